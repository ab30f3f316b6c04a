//! `/v1/admin/handoff/jobs`: the outbox as the operator sees it. Dead jobs
//! (the help desk refused them, or kept failing) are listed and retried here.

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::admin::Admin;
use super::error::{ApiError, ApiResult};
use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/handoff/jobs", get(list)).route("/v1/admin/handoff/jobs/{id}/retry", post(retry))
}

#[derive(Deserialize)]
struct ListQuery {
    /// `pending`, `leased`, `done` or `dead`.
    state: Option<String>,
    limit: Option<i64>,
}

async fn list(_: Admin, State(app): State<AppState>, Query(q): Query<ListQuery>) -> ApiResult<Json<Value>> {
    let jobs = app.db.list_jobs(q.state.as_deref(), q.limit.unwrap_or(100).clamp(1, 500)).await?;
    Ok(Json(json!({ "jobs": jobs })))
}

async fn retry(_: Admin, State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    if !app.db.retry_dead_job(&id).await? {
        return Err(ApiError::Conflict("only a dead job can be retried".into()));
    }
    app.escalations.wake();
    Ok(Json(json!({ "id": id, "state": "pending" })))
}
