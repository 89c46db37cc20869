//! Errors as HTTP responses: one JSON shape, `{"error": {"code", "message"}}`,
//! and one exhaustive map from error to status. [`ApiError`] is what a
//! request can fail with: the service's errors, and those only the transport
//! has (routing, bodies, content types, authentication). A 5xx body never
//! carries internals: the cause is logged in the request's span instead.
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::Error;

/// Seconds a client should wait before retrying a 429/503.
pub const RETRY_AFTER_SECS: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Service(#[from] Error),
    #[error("invalid JSON body: {0}")]
    InvalidJson(String),
    #[error("invalid base64 image: {0}")]
    InvalidBase64(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("no such route")]
    RouteNotFound,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("the request took longer than the limit of {0} s")]
    Timeout(f64),
    #[error("the request body is larger than the limit of {0} bytes")]
    BodyTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
}

impl ApiError {
    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Service(e) => e.code(),
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::InvalidBase64(_) => "invalid_base64",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::RouteNotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Timeout(_) => "request_timeout",
            ApiError::BodyTooLarge(_) => "body_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
        }
    }

    /// An invalid parameter (the service's error, raised at the edge).
    pub fn param(name: &'static str, message: impl Into<String>) -> Self {
        Error::param(name, message).into()
    }

    /// One error of every kind, with a typical message: the examples of the
    /// OpenAPI document and the README's table, in the document's order.
    pub fn samples() -> Vec<ApiError> {
        let s = |e: Error| ApiError::Service(e);
        let all = vec![
            s(Error::InvalidRequest("invalid multipart body: missing boundary".into())),
            s(Error::param("threshold", "must be a cosine similarity from 0 to 1")),
            s(Error::MissingImage(
                "no `image` image: send it as a multipart field, an image/* body, or base64 in JSON".into(),
            )),
            ApiError::InvalidJson("expected value at line 1 column 1".into()),
            ApiError::InvalidBase64("Invalid symbol 33, offset 0.".into()),
            s(Error::PersonNotFound("01a2224222ec71bdb9d7a84a1ee5db30".into())),
            s(Error::FaceNotFound("01a2224222ec71bdb9d7a84b8110f255".into())),
            s(Error::KeyNotFound("5f0c2a9e41d7b366".into())),
            s(Error::ModelNotFound("no face has an embedding by dlib-resnet-v1@sha256:5553".into())),
            ApiError::Unauthorized("an API key is required: send `Authorization: Bearer <key>`".into()),
            ApiError::Forbidden("key 5f0c2a9e41d7b366 has scope match, this needs enroll".into()),
            ApiError::RouteNotFound,
            ApiError::MethodNotAllowed,
            ApiError::Timeout(60.0),
            ApiError::BodyTooLarge(10 << 20),
            ApiError::UnsupportedMediaType(
                "unsupported Content-Type \"text/plain\": send multipart/form-data, an image/* body, or application/json"
                    .into(),
            ),
            s(Error::InvalidImage(
                "the data is not an image in a supported format (JPEG, PNG, WebP, BMP, GIF, TIFF)".into(),
            )),
            s(Error::ImageTooLarge(
                "the image is 60000x60000, larger than the limit of 20000 pixels per side".into(),
            )),
            s(Error::NoFace),
            s(Error::MultipleFaces(3)),
            s(Error::FaceTooSmall { size: 24.0, min: 40.0 }),
            s(Error::FaceTooBlurry { sharpness: 3.2, min: 10.0 }),
            s(Error::NoEnrolledFaces("01a2224222ec71bdb9d7a84a1ee5db30".into())),
            s(Error::ModelIncomplete { model: "sface-2021dec-int8bq@sha256:fb14".into(), lacking: 3 }),
            s(Error::ModelInUse(
                "this service compares 120 faces by embeddings of sface-2021dec-int8bq@sha256:fb14 kept beside: \
                 switch to it first (or prune another model)"
                    .into(),
            )),
            s(Error::Overloaded),
            s(Error::Unavailable("the service is shutting down".into())),
            s(Error::DatabaseUnavailable(
                "the database cannot be reached: writes are refused until it is back".into(),
            )),
            s(Error::Internal(anyhow::anyhow!("example"))),
        ];
        // A new variant of either enum does not compile until its status is
        // mapped below, and the test counts the samples.
        for e in &all {
            let _ = status(e);
        }
        all
    }
}

pub fn status(e: &ApiError) -> StatusCode {
    match e {
        ApiError::Service(e) => service_status(e),
        ApiError::InvalidJson(_) | ApiError::InvalidBase64(_) => StatusCode::BAD_REQUEST,
        ApiError::RouteNotFound => StatusCode::NOT_FOUND,
        ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
        ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ApiError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
        ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
    }
}

fn service_status(e: &Error) -> StatusCode {
    match e {
        Error::InvalidRequest(_) | Error::InvalidParameter { .. } | Error::MissingImage(_) => StatusCode::BAD_REQUEST,
        Error::PersonNotFound(_) | Error::FaceNotFound(_) | Error::KeyNotFound(_) | Error::ModelNotFound(_) => {
            StatusCode::NOT_FOUND
        }
        Error::NoEnrolledFaces(_) | Error::ModelIncomplete { .. } | Error::ModelInUse(_) => StatusCode::CONFLICT,
        Error::InvalidImage(_)
        | Error::ImageTooLarge(_)
        | Error::NoFace
        | Error::MultipleFaces(_)
        | Error::FaceTooSmall { .. }
        | Error::FaceTooBlurry { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Overloaded => StatusCode::TOO_MANY_REQUESTS,
        Error::Unavailable(_) | Error::DatabaseUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::Service(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status(&self);
        let message = match &self {
            ApiError::Service(Error::Internal(cause)) => {
                tracing::error!(error = format!("{cause:#}"), "internal error");
                "internal error; the cause is in the service log".to_string()
            }
            other => other.to_string(),
        };
        let mut detail = json!({ "code": self.code(), "message": message });
        if let ApiError::Service(Error::InvalidParameter { name, .. }) = &self {
            detail["param"] = json!(name);
        }
        let body = Json(json!({ "error": detail }));
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

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_cover_every_code_once() {
        let codes: Vec<&str> = ApiError::samples().iter().map(ApiError::code).collect();
        let unique: std::collections::BTreeSet<&str> = codes.iter().copied().collect();
        assert_eq!(unique.len(), codes.len(), "{codes:?}");
        assert_eq!(codes.len(), 29, "a variant was added: list it in samples()");
    }
}
