//! `POST /v1/webhooks/shopify`: verify the signature over the raw bytes,
//! store the event durably (in one commit with the others arriving at the
//! same time), answer 200, then process it (`commerce::shopify::webhooks`). Redelivery (same `X-Shopify-Webhook-Id`)
//! is acknowledged and ignored; events stored but unprocessed when the
//! service stopped are processed at the next start ([`resume`]).
//! `GET /v1/admin/webhooks` is the operator's event log.

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Query, State},
    http::HeaderMap,
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::admin::{Admin, cursor};
use super::error::{ApiError, ApiResult};
use crate::app::AppState;
use crate::commerce::shopify::webhooks::signature_valid;
use crate::db::NewWebhook;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/webhooks/shopify", post(receive)).route("/v1/admin/webhooks", get(event_log))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

async fn receive(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult<Json<Value>> {
    let Some(secret) = &app.settings.shopify_webhook_secret else {
        tracing::warn!("a Shopify webhook arrived but SHOPIFY_WEBHOOK_SECRET is not set: refused");
        return Err(ApiError::Unauthorized);
    };
    if !signature_valid(secret.expose().as_bytes(), &body, header(&headers, "X-Shopify-Hmac-Sha256")) {
        tracing::warn!(bytes = body.len(), "refused a Shopify webhook with a bad or missing signature");
        return Err(ApiError::Unauthorized);
    }
    // One app secret can serve several shops; only ours may change our cache.
    let shop = header(&headers, "X-Shopify-Shop-Domain");
    if let Some(ours) = app.settings.shopify.as_ref().map(|shopify| shopify.shop.as_str())
        && !shop.is_some_and(|shop| shop.eq_ignore_ascii_case(ours))
    {
        tracing::warn!(shop = shop.unwrap_or(""), "refused a Shopify webhook for another shop");
        return Err(ApiError::Unauthorized);
    }
    // Signed, so it is Shopify's; it still has to be JSON to mean anything.
    if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
        return Err(ApiError::BadRequest("the webhook body is not JSON".into()));
    }
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::BadRequest("the webhook body is not UTF-8".into()))?;
    let webhook_id = header(&headers, "X-Shopify-Webhook-Id")
        .ok_or_else(|| ApiError::BadRequest("missing X-Shopify-Webhook-Id".into()))?;
    let topic =
        header(&headers, "X-Shopify-Topic").ok_or_else(|| ApiError::BadRequest("missing X-Shopify-Topic".into()))?;
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let event = NewWebhook {
        webhook_id: webhook_id.to_owned(),
        topic: topic.to_owned(),
        shop: shop.map(str::to_owned),
        correlation_id: correlation_id.clone(),
        body: text.to_owned(),
    };
    let stored = app.webhooks.store(event).await.map_err(|_| ApiError::Unavailable("cannot store the webhook now"))?;
    if !stored {
        tracing::info!(webhook_id, topic, "duplicate Shopify webhook acknowledged and ignored");
        return Ok(Json(json!({ "status": "duplicate" })));
    }
    tracing::info!(webhook_id, topic, correlation_id, "Shopify webhook stored");
    Ok(Json(json!({ "status": "stored", "correlation_id": correlation_id })))
}

/// Processes every event stored before a stop and not yet processed.
pub async fn resume(app: &AppState) -> Result<(), sqlx::Error> {
    let pending = app.db.unprocessed_webhooks().await?;
    if !pending.is_empty() {
        tracing::info!(count = pending.len(), "processing Shopify webhooks stored before the last stop");
    }
    app.webhooks.resume(pending);
    Ok(())
}

#[derive(Deserialize)]
struct LogQuery {
    limit: Option<i64>,
    /// The previous page's `next_before` cursor.
    before: Option<String>,
}

async fn event_log(_: Admin, State(app): State<AppState>, Query(q): Query<LogQuery>) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let before = cursor(q.before.as_deref())?;
    let events = app.db.list_webhooks(limit, before).await?;
    let next_before = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| format!("{}.{}", e.received_at, e.webhook_id)))
        .flatten();
    Ok(Json(json!({ "events": events, "next_before": next_before })))
}
