//! `/v1/admin/kb/*`: editing the knowledge base and seeing what retrieval
//! finds (PROTOCOL.md §4). Every change is versioned and re-indexed before
//! the response, so the next customer question sees it.

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};

use super::{
    admin::Admin,
    error::{ApiError, ApiResult},
};
use crate::app::AppState;
use crate::knowledge::{ArticlePatch, NewArticle};

/// Who the version history names when the request does not say.
const DEFAULT_AUTHOR: &str = "admin";
const MAX_SEARCH_RESULTS: usize = 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/kb/articles", get(list).post(create))
        .route("/v1/admin/kb/articles/{id}", get(read).put(update).delete(remove))
        .route("/v1/admin/kb/search", post(search))
}

/// Parses a JSON body into `T`, refusing bad input with our own error
/// shape (and without echoing it).
fn parse<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        let what = if e.is_data() { "has a missing or mistyped field" } else { "is not valid JSON" };
        ApiError::BadRequest(format!("the request body {what}"))
    })
}

/// The editor's name from `X-Admin-Name`, for the version history.
fn author(headers: &HeaderMap) -> String {
    headers
        .get("x-admin-name")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|name| !name.is_empty() && name.len() <= 100 && name != &"import")
        .unwrap_or(DEFAULT_AUTHOR)
        .to_owned()
}

async fn list(_: Admin, State(app): State<AppState>) -> ApiResult<Json<Value>> {
    let articles = app.knowledge.list().await?;
    let summaries: Vec<Value> = articles
        .iter()
        .map(|a| {
            json!({
                "id": a.id, "title": a.fields.title, "status": a.fields.status, "locale": a.fields.locale,
                "tags": a.fields.tags, "url": a.fields.url, "version": a.version, "updated_at": a.updated_at,
            })
        })
        .collect();
    Ok(Json(json!({ "articles": summaries })))
}

async fn read(_: Admin, State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (article, versions) = app.knowledge.get(&id).await?;
    let mut body = serde_json::to_value(article).unwrap_or_default();
    body["versions"] = serde_json::to_value(versions).unwrap_or_default();
    Ok(Json(body))
}

async fn create(
    _: Admin,
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let new: NewArticle = parse(&body)?;
    let article = app.knowledge.create(new, &author(&headers)).await?;
    Ok((StatusCode::CREATED, Json(serde_json::to_value(article).unwrap_or_default())))
}

async fn update(
    _: Admin,
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let patch: ArticlePatch = parse(&body)?;
    let article = app.knowledge.update(&id, patch, &author(&headers)).await?;
    Ok(Json(serde_json::to_value(article).unwrap_or_default()))
}

async fn remove(
    _: Admin,
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    app.knowledge.delete(&id, &author(&headers)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct SearchRequest {
    query: String,
    limit: Option<usize>,
}

async fn search(_: Admin, State(app): State<AppState>, body: Bytes) -> ApiResult<Json<Value>> {
    let request: SearchRequest = parse(&body)?;
    if request.query.trim().is_empty() || request.query.chars().count() > 4000 {
        return Err(ApiError::BadRequest("query must be 1-4000 characters".into()));
    }
    let limit = request.limit.unwrap_or(5).clamp(1, MAX_SEARCH_RESULTS);
    let hits = app.knowledge.search(&request.query, limit).await?;
    let results: Vec<Value> = hits
        .iter()
        .map(|h| {
            json!({
                "article_id": h.article_id, "title": h.title, "heading": h.heading, "text": h.text,
                "score": h.score, "coverage": h.coverage, "similarity": h.similarity,
                "question_similarity": h.question_similarity,
            })
        })
        .collect();
    Ok(Json(json!({ "results": results })))
}
