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
    let verdict = match verify(&app, query.as_deref().unwrap_or("")).await? {
        Refusal::Unsigned(reason) => {
            // Anyone can send this; an audit row per try would let them fill the table.
            tracing::info!(%correlation_id, %reason, "unsigned App Proxy request refused");
            return Err(ApiError::Unauthorized);
        }
        Refusal::Signed(verdict) => verdict,
    };
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

enum Refusal {
    /// Refused before Shopify's signature vouched for anything.
    Unsigned(String),
    /// The verified request, or why a signed one was refused.
    Signed(Result<ProxyRequest, String>),
}

async fn verify(app: &AppState, query: &str) -> Result<Refusal, sqlx::Error> {
    let Some(secret) = &app.settings.shopify_app_proxy_secret else {
        return Ok(Refusal::Unsigned("SHOPIFY_APP_PROXY_SECRET is not configured".into()));
    };
    let expected_shop = app.settings.shopify.as_ref().map(|shopify| shopify.shop.as_str());
    let request = match app_proxy::verify(query, secret, expected_shop, now_ms() / 1000) {
        Ok(request) => request,
        Err(error) if error.was_signed() => return Ok(Refusal::Signed(Err(error.to_string()))),
        Err(error) => return Ok(Refusal::Unsigned(error.to_string())),
    };
    // A signature is good for one use: a leaked proxied URL cannot be replayed.
    let remember_until = (request.timestamp + MAX_CLOCK_SKEW_SECS + 60) * 1000;
    if !app.db.claim_signature(&request.signature, remember_until).await? {
        return Ok(Refusal::Signed(Err("replayed signature".into())));
    }
    Ok(Refusal::Signed(Ok(request)))
}
