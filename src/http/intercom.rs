//! `POST /v1/webhooks/intercom`: verify `X-Hub-Signature` over the raw
//! bytes, store the notification durably, answer 200, then relay it to the
//! customer. A redelivery (same notification id) is acknowledged and ignored;
//! notifications stored but not relayed when the service stopped are relayed
//! at the next start ([`resume`]).

use std::sync::Arc;

use axum::{Json, Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use crate::app::AppState;
use crate::chat::ChatService;
use crate::db::Db;
use crate::handoff::DeskEvent;
use crate::handoff::intercom::webhook;
use crate::handoff::relay::{self, Relayed};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/webhooks/intercom", post(receive))
}

async fn receive(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult<Json<Value>> {
    let Some(secret) = &app.settings.intercom_client_secret else {
        tracing::warn!("an Intercom webhook arrived but INTERCOM_CLIENT_SECRET is not set: refused");
        return Err(ApiError::Unauthorized);
    };
    let signature = headers.get("X-Hub-Signature").and_then(|v| v.to_str().ok());
    if !webhook::signature_valid(secret.expose().as_bytes(), &body, signature) {
        tracing::warn!(bytes = body.len(), "refused an Intercom webhook with a bad or missing signature");
        return Err(ApiError::Unauthorized);
    }
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::BadRequest("the webhook body is not UTF-8".into()))?;
    let value: Value =
        serde_json::from_str(text).map_err(|_| ApiError::BadRequest("the webhook body is not JSON".into()))?;
    let notification =
        webhook::parse(&value).ok_or_else(|| ApiError::BadRequest("the body is not a notification_event".into()))?;
    if !app.db.insert_intercom_webhook(&notification.id, &notification.topic, text).await? {
        tracing::info!(id = %notification.id, topic = %notification.topic, "duplicate Intercom webhook ignored");
        return Ok(Json(json!({ "status": "duplicate" })));
    }
    let (db, chat) = (app.db.clone(), app.chat.clone());
    app.tasks.spawn(async move { process(&db, &chat, &notification.id, notification.event.as_ref()).await });
    Ok(Json(json!({ "status": "stored" })))
}

/// Relays every notification stored before a stop and not yet relayed.
pub async fn resume(app: &AppState) -> Result<(), sqlx::Error> {
    let pending = app.db.unprocessed_intercom_webhooks().await?;
    let (db, chat) = (app.db.clone(), app.chat.clone());
    app.tasks.spawn(async move {
        for (id, body) in pending {
            let event =
                serde_json::from_str::<Value>(&body).ok().as_ref().and_then(webhook::parse).and_then(|n| n.event);
            process(&db, &chat, &id, event.as_ref()).await;
        }
    });
    Ok(())
}

#[tracing::instrument(skip(db, chat, event))]
async fn process(db: &Db, chat: &Arc<ChatService>, id: &str, event: Option<&DeskEvent>) {
    let (status, detail) = match event {
        None => ("ignored", Some("topic not handled")),
        Some(event) => match relay::relay(db, chat, event).await {
            Ok(Relayed::Relayed) => ("relayed", None),
            Ok(Relayed::Unknown) => ("ignored", Some("not an open handoff of ours")),
            Err(error) => {
                // Left as `received`: the next start tries again.
                tracing::error!(%error, "cannot relay an Intercom webhook");
                return;
            }
        },
    };
    if let Err(error) = db.finish_intercom_webhook(id, status, detail).await {
        tracing::error!(%error, "cannot record the outcome of an Intercom webhook");
    }
}
