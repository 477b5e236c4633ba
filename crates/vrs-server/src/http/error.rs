//! The API's error: a status and a JSON `{"error": …}` body that says what to do.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::StoreError;

/// An error response: a status and a message for a person.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    pub(crate) status: StatusCode,
    /// What went wrong and what to do.
    pub(crate) error: String,
    /// Seconds to wait (a 429's Retry-After).
    #[serde(skip)]
    retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            retry_after: None,
        }
    }

    pub(crate) fn too_many(what: &str, wait: std::time::Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            error: format!("too many {what} from this device: try again in {secs} s"),
            retry_after: Some(secs),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.retry_after;
        let mut r = (self.status, Json(self)).into_response();
        if let Some(secs) = retry {
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        r
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::Forbidden(_) => StatusCode::FORBIDDEN,
            StoreError::NotFound(_) => StatusCode::NOT_FOUND,
            StoreError::Invalid(_) | StoreError::File(_) => StatusCode::UNPROCESSABLE_ENTITY,
            // A broken upload stream is the client's connection, not the service.
            StoreError::Io(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed");
            return ApiError::new(status, "the service failed; the operator has the details");
        }
        ApiError::new(status, e.to_string())
    }
}
