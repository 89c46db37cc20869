//! Errors as HTTP responses: one JSON shape, `{"error": {"code", "message"}}`,
//! and one exhaustive map from error to status. A 5xx body never carries
//! internals: the cause is logged in the request's span instead.
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::Error;

/// Seconds a client should wait before retrying a 429/503.
pub const RETRY_AFTER_SECS: u64 = 1;

pub fn status(e: &Error) -> StatusCode {
    match e {
        Error::InvalidRequest(_)
        | Error::InvalidParameter { .. }
        | Error::MissingImage(_)
        | Error::InvalidJson(_)
        | Error::InvalidBase64(_) => StatusCode::BAD_REQUEST,
        Error::PersonNotFound(_) | Error::FaceNotFound(_) | Error::KeyNotFound(_) | Error::RouteNotFound => {
            StatusCode::NOT_FOUND
        }
        Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Error::NoEnrolledFaces(_) => StatusCode::CONFLICT,
        Error::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
        Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::InvalidImage(_)
        | Error::ImageTooLarge(_)
        | Error::NoFace
        | Error::MultipleFaces(_)
        | Error::FaceTooSmall { .. }
        | Error::FaceTooBlurry { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Overloaded => StatusCode::TOO_MANY_REQUESTS,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = status(&self);
        let message = match &self {
            Error::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error");
                "internal error; the cause is in the service log".to_string()
            }
            other => other.to_string(),
        };
        let body = Json(json!({ "error": { "code": self.code(), "message": message } }));
        let mut response = (status, body).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}
