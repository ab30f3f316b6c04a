//! The HTTP boundary's one error type: `{ "error": { "code", "message" } }`
//! with a fitting status. Internals are logged, never echoed.

use std::time::Duration;

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("unauthorized")]
    Unauthorized,
    #[error("the admin API is disabled: set ADMIN_TOKEN")]
    AdminDisabled,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(&'static str),
    /// Too many requests from one client; `retry_after` becomes `Retry-After`.
    #[error("Too many requests. Please try again shortly.")]
    RateLimited { retry_after: Option<Duration> },
    #[error("{0}")]
    Unavailable(&'static str),
    #[error("the knowledge base failed: {0}")]
    Knowledge(String),
    #[error(transparent)]
    Storage(#[from] sqlx::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::AdminDisabled => (StatusCode::NOT_FOUND, "admin_disabled"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Knowledge(error) => {
                tracing::error!(%error, "knowledge base error in an HTTP handler");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
            ApiError::Storage(error) => {
                tracing::error!(%error, "storage error in an HTTP handler");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let message = match &self {
            ApiError::Storage(_) | ApiError::Knowledge(_) => "Something went wrong on our side.".to_owned(),
            other => other.to_string(),
        };
        let mut response = (status, Json(json!({ "error": { "code": code, "message": message } }))).into_response();
        if let ApiError::RateLimited { retry_after: Some(wait) } = self {
            // Whole seconds, rounded up: a client that waits that long gets through.
            let secs = wait.as_millis().div_ceil(1000).max(1);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs as u64));
        }
        response
    }
}

impl From<crate::knowledge::KnowledgeError> for ApiError {
    fn from(error: crate::knowledge::KnowledgeError) -> Self {
        use crate::knowledge::KnowledgeError as K;
        match error {
            K::NotFound => ApiError::NotFound,
            K::Conflict(message) => ApiError::Conflict(message),
            K::Invalid(message) => ApiError::BadRequest(message),
            K::Storage(error) => ApiError::Storage(error),
            K::Retrieval(error) => ApiError::Knowledge(error.to_string()),
            K::Qdrant(error) => ApiError::Knowledge(error.to_string()),
        }
    }
}
