//! The one place where errors become HTTP: status, stable error code, and a message that is
//! safe to show (details of internal failures go to the log only).
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use iris_services::Error;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response: `{"error": {"code": …, "message": …, "field": …}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A stable, machine-readable `code` and a human `message`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// One of: invalid_request, malformed_json, unsupported_media_type, payload_too_large,
    /// unauthenticated, invalid_credentials, too_many_attempts, forbidden, not_found,
    /// method_not_allowed, conflict, timeout, unavailable, internal.
    pub code: &'static str,
    pub message: String,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<&'static str>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            field: Some(field),
            ..ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        use StatusCode as S;
        match e {
            Error::Invalid { field, message } => ApiError::invalid(field, message),
            Error::Unauthenticated => {
                ApiError::new(S::UNAUTHORIZED, "unauthenticated", e.to_string())
            }
            Error::InvalidCredentials => {
                ApiError::new(S::UNAUTHORIZED, "invalid_credentials", e.to_string())
            }
            Error::Locked { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(S::TOO_MANY_REQUESTS, "too_many_attempts", e.to_string())
            },
            Error::Forbidden => ApiError::new(S::FORBIDDEN, "forbidden", e.to_string()),
            Error::NotFound(_) => ApiError::new(S::NOT_FOUND, "not_found", e.to_string()),
            Error::Conflict(_) => ApiError::new(S::CONFLICT, "conflict", e.to_string()),
            Error::Busy => ApiError {
                retry_after: Some(1),
                ..ApiError::new(S::SERVICE_UNAVAILABLE, "unavailable", e.to_string())
            },
            Error::Unavailable(ref source) => {
                tracing::error!(error = %source, "storage unavailable");
                ApiError::new(S::SERVICE_UNAVAILABLE, "unavailable", e.to_string())
            }
            Error::Internal(ref detail) => {
                tracing::error!(%detail, "internal error");
                ApiError::new(S::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                field: self.field,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"iris\""),
            );
        }
        response
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
