//! `/v1/admin/*`: the operator's API, behind `Authorization: Bearer <ADMIN_TOKEN>`.

use axum::{
    Json, Router,
    extract::{FromRequestParts, Path, Query, State},
    http::{header::AUTHORIZATION, request::Parts},
    routing::get,
};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::error::{ApiError, ApiResult};
use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/conversations", get(list_conversations))
        .route("/v1/admin/conversations/{id}", get(conversation))
        .route("/v1/admin/identity-audit", get(identity_audit))
        .route("/v1/admin/analytics", get(analytics))
}

/// Proof that the request carried the admin token. Handlers that take it
/// cannot run without it.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let Some(expected) = &app.settings.admin_token else {
            return Err(ApiError::AdminDisabled);
        };
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        // Constant time, so the token cannot be guessed byte by byte.
        if bool::from(presented.as_bytes().ct_eq(expected.expose().as_bytes())) {
            Ok(Admin)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<i64>,
    /// The previous page's `next_before` cursor.
    before: Option<String>,
    /// `open`, `escalated` or `closed`: e.g. the queue of escalated conversations.
    status: Option<String>,
}

async fn list_conversations(
    _: Admin,
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let before = cursor(q.before.as_deref())?;
    let conversations = app.db.list_conversations(limit, before, q.status.as_deref()).await?;
    let next_before = (conversations.len() as i64 == limit)
        .then(|| conversations.last().map(|c| format!("{}.{}", c.updated_at, c.id)))
        .flatten();
    Ok(Json(json!({ "conversations": conversations, "next_before": next_before })))
}

/// A `before` cursor, `<time>.<id>`: with the id as tie-breaker, rows that
/// share a millisecond are neither skipped nor repeated between pages. An
/// unreadable one is the client's mistake.
pub fn cursor(before: Option<&str>) -> ApiResult<Option<(i64, &str)>> {
    before
        .map(|cursor| {
            cursor
                .split_once('.')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id)))
                .ok_or_else(|| ApiError::BadRequest("`before` is not a cursor from `next_before`".into()))
        })
        .transpose()
}

async fn conversation(_: Admin, State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let detail = app.db.conversation(&id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(serde_json::to_value(detail).unwrap_or_default()))
}

async fn identity_audit(_: Admin, State(app): State<AppState>, Query(q): Query<ListQuery>) -> ApiResult<Json<Value>> {
    let entries = app.db.identity_audit(q.limit.unwrap_or(100).clamp(1, 1000)).await?;
    Ok(Json(json!({ "entries": entries })))
}

#[derive(Deserialize)]
struct AnalyticsQuery {
    /// The window, in days back from now.
    days: Option<i64>,
}

async fn analytics(_: Admin, State(app): State<AppState>, Query(q): Query<AnalyticsQuery>) -> ApiResult<Json<Value>> {
    let days = q.days.unwrap_or(30).clamp(1, 3650);
    let since = crate::db::now_ms() - days * 24 * 60 * 60 * 1000;
    let report = app.db.analytics(since, 50).await?;
    Ok(Json(serde_json::to_value(report).unwrap_or_default()))
}
