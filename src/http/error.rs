//! The HTTP boundary's one error type: `{ "error": { "code", "message" } }`
//! with a fitting status. Internals are logged, never echoed.

use axum::{
    Json,
    http::StatusCode,
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
        (status, Json(json!({ "error": { "code": code, "message": message } }))).into_response()
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
