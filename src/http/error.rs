//! The one error type of the HTTP layer, mapped to status codes and a JSON body:
//!
//! ```json
//! {"error": {"code": "invalid_request", "message": "…", "details": [{"path": "customers[3].segment", "problem": "…"}]}}
//! ```
//!
//! 4xx messages are written for the caller; 5xx details are logged and replaced by a generic
//! message, so internals (paths, causes) never leave the server.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One problem with a request, at a JSON path such as `customers[3].segment`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Detail {
    pub path: String,
    pub problem: String,
}

impl Detail {
    pub fn new(path: impl Into<String>, problem: impl Into<String>) -> Self {
        Self { path: path.into(), problem: problem.into() }
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON (syntax error, truncated, not UTF-8).
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("the request body is larger than this server accepts")]
    PayloadTooLarge,
    /// The body's content type is not one the route reads (it names those it does).
    #[error("expected a body with Content-Type: {0}")]
    UnsupportedMediaType(&'static str),
    /// Well-formed JSON with invalid values, each named by its path.
    #[error("invalid request: {}", .0.iter().map(|d| format!("{}: {}", d.path, d.problem)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Detail>),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A model artifact that cannot be served (corrupt, wrong schema, inconsistent).
    #[error("model {id} cannot be served: {reason}")]
    UnusableModel { id: String, reason: String },
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("no model is loaded; activate one with POST /v1/models/{{id}}/activate")]
    NoModel,
    #[error("the request took longer than {0} ms")]
    Timeout(u128),
    /// Anything unexpected; the text is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(path: impl Into<String>, problem: impl Into<String>) -> Self {
        ApiError::Invalid(vec![Detail::new(path, problem)])
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid(_) | ApiError::UnusableModel { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NoModel | ApiError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Invalid(_) => "invalid_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::UnusableModel { .. } => "unusable_model",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NoModel => "no_model",
            ApiError::Timeout(_) => "timeout",
            ApiError::Internal(_) => "internal",
        }
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorObject,
}

/// What went wrong.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorObject {
    /// Stable machine-readable code, e.g. `invalid_request`, `no_model`.
    pub code: String,
    /// For people.
    pub message: String,
    /// Problems by JSON path (for `invalid_request`; empty otherwise).
    pub details: Vec<Detail>,
}

/// The JSON error response for a status, code, message and details.
pub fn error_response(status: StatusCode, code: &str, message: String, details: &[Detail]) -> Response {
    let body = ErrorResponse { error: ErrorObject { code: code.into(), message, details: details.to_vec() } };
    let bytes = serde_json::to_vec(&body).expect("error body serializes");
    let mut r = (status, bytes).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let message = if status.is_server_error() && !matches!(self, ApiError::NoModel | ApiError::Timeout(_)) {
            tracing::error!(error = %self, "request failed");
            "internal server error".to_string()
        } else {
            self.to_string()
        };
        let details: &[Detail] = match &self {
            ApiError::Invalid(d) => d,
            _ => &[],
        };
        let mut r = error_response(status, self.code(), message, details);
        if matches!(self, ApiError::Unauthorized) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// Turns a panic in a handler into a 500 in the same JSON format; the panic text is logged only.
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let text = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    tracing::error!(panic = %text, "handler panicked");
    error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error".into(), &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_requests_are_422_and_name_their_paths() {
        let e = ApiError::invalid("customers[3].segment", "unknown segment");
        assert_eq!(e.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.code(), "invalid_request");
        assert!(e.to_string().contains("customers[3].segment"));
    }

    #[test]
    fn statuses_follow_the_kind_of_error() {
        assert_eq!(ApiError::MalformedJson("x".into()).status_code(), StatusCode::BAD_REQUEST);
        assert_eq!(ApiError::PayloadTooLarge.status_code(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            ApiError::UnsupportedMediaType("application/json").status_code(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(ApiError::NoModel.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ApiError::Unauthorized.status_code(), StatusCode::UNAUTHORIZED);
        assert_eq!(ApiError::Internal("x".into()).status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
