//! `GET /v1/identity/app-proxy`: a token for the customer Shopify says is
//! logged in, for stores without a backend of their own (PROTOCOL.md §2).

use axum::{
    Json, Router,
    extract::{RawQuery, State},
    http::header,
    response::IntoResponse,
    routing::get,
};
use serde_json::json;

use super::error::{ApiError, ApiResult};
use crate::app::AppState;
use crate::db::{AuditRecord, now_ms};
use crate::identity::app_proxy::{self, MAX_CLOCK_SKEW_SECS, ProxyRequest};

/// App Proxy tokens are short-lived: the widget asks again on the next page.
const TOKEN_LIFETIME_SECS: u64 = 60 * 60;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/identity/app-proxy", get(app_proxy))
}

async fn app_proxy(State(app): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<impl IntoResponse> {
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let verdict = verify(&app, query.as_deref().unwrap_or("")).await?;
    let mut record = AuditRecord {
        correlation_id: &correlation_id,
        session_id: None,
        method: "app_proxy",
        decision: "issued",
        subject: None,
        detail: None,
    };
    match verdict {
        Ok(request) => {
            let (token, expires_at) = app.tokens.issue(request.customer_id.as_deref(), TOKEN_LIFETIME_SECS);
            record.subject = request.customer_id.as_deref();
            app.db.record_identity_decision(&record).await?;
            Ok(([(header::CACHE_CONTROL, "no-store")], Json(json!({ "token": token, "expires_at": expires_at }))))
        }
        Err(reason) => {
            tracing::info!(%correlation_id, %reason, "App Proxy request refused");
            record.decision = "refused";
            record.detail = Some(&reason);
            app.db.record_identity_decision(&record).await?;
            Err(ApiError::Unauthorized)
        }
    }
}

/// The verified request, or why it was refused.
async fn verify(app: &AppState, query: &str) -> Result<Result<ProxyRequest, String>, sqlx::Error> {
    let Some(secret) = &app.settings.shopify_app_proxy_secret else {
        return Ok(Err("SHOPIFY_APP_PROXY_SECRET is not configured".into()));
    };
    let request = match app_proxy::verify(query, secret, now_ms() / 1000) {
        Ok(request) => request,
        Err(error) => return Ok(Err(error.to_string())),
    };
    // A signature is good for one use: a leaked proxied URL cannot be replayed.
    let remember_until = (request.timestamp + MAX_CLOCK_SKEW_SECS + 60) * 1000;
    if !app.db.claim_signature(&request.signature, remember_until).await? {
        return Ok(Err("replayed signature".into()));
    }
    Ok(Ok(request))
}
