//! Errors as HTTP responses: one JSON shape ([`ErrorBody`], the type that is
//! both serialised and documented), the status from the code table
//! (`service::error::Code`), and one example of every code. [`ApiError`] is what a
//! request can fail with: the service's errors, and those only the transport
//! has (routing, bodies, content types, authentication). A 5xx body never
//! carries internals: the cause is logged in the request's span instead.
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, Type};

use crate::service::error::{Code, Error};

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
    /// Over a rate limit: the message, and seconds until a retry can pass.
    #[error("{0}")]
    RateLimited(String, u64),
}

impl ApiError {
    /// The stable, machine-readable code.
    pub fn code(&self) -> Code {
        match self {
            ApiError::Service(e) => e.code(),
            ApiError::InvalidJson(_) => Code::InvalidJson,
            ApiError::InvalidBase64(_) => Code::InvalidBase64,
            ApiError::Unauthorized(_) => Code::Unauthorized,
            ApiError::Forbidden(_) => Code::Forbidden,
            ApiError::RouteNotFound => Code::RouteNotFound,
            ApiError::MethodNotAllowed => Code::MethodNotAllowed,
            ApiError::Timeout(_) => Code::RequestTimeout,
            ApiError::BodyTooLarge(_) => Code::BodyTooLarge,
            ApiError::UnsupportedMediaType(_) => Code::UnsupportedMediaType,
            ApiError::RateLimited(..) => Code::RateLimited,
        }
    }

    /// An invalid parameter (the service's error, raised at the edge).
    pub fn param(name: &'static str, message: impl Into<String>) -> Self {
        Error::param(name, message).into()
    }

    /// One error of every code, with a typical message, in the table's
    /// order: the examples of the OpenAPI document and the README's table.
    pub fn samples() -> Vec<ApiError> {
        Code::ALL.iter().map(|&code| example(code)).collect()
    }

    /// The JSON body this error answers with.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            ApiError::Service(Error::Internal(_)) => "internal error; the cause is in the service log".to_string(),
            other => other.to_string(),
        };
        let param = match self {
            ApiError::Service(Error::InvalidParameter { name, .. }) => Some(name.to_string()),
            _ => None,
        };
        ErrorBody { error: ErrorDetail { code: self.code(), message, param } }
    }
}

/// Every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: branch on this.
    #[schema(schema_with = error_code_schema)]
    pub code: Code,
    /// For people; may change between versions.
    pub message: String,
    /// With `invalid_parameter`: the field or query parameter at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
}

fn error_code_schema() -> ObjectBuilder {
    let codes: Vec<&str> = Code::ALL.iter().map(|c| c.name()).collect();
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(codes))
}

/// An error of each code with a typical message. Exhaustive: a new code
/// does not compile until it has its example here.
fn example(code: Code) -> ApiError {
    let s = ApiError::Service;
    let id = "01a2224222ec71bdb9d7a84a1ee5db30";
    match code {
        Code::InvalidRequest => s(Error::InvalidRequest("invalid multipart body: missing boundary".into())),
        Code::InvalidParameter => s(Error::param("threshold", "must be a cosine similarity from 0 to 1")),
        Code::MissingImage => s(Error::MissingImage(
            "no `image` image: send it as a multipart field, an image/* body, or base64 in JSON".into(),
        )),
        Code::InvalidJson => ApiError::InvalidJson("expected value at line 1 column 1".into()),
        Code::InvalidBase64 => ApiError::InvalidBase64("Invalid symbol 33, offset 0.".into()),
        Code::PersonNotFound => s(Error::PersonNotFound(id.into())),
        Code::FaceNotFound => s(Error::FaceNotFound("01a2224222ec71bdb9d7a84b8110f255".into())),
        Code::KeyNotFound => s(Error::KeyNotFound("5f0c2a9e41d7b366".into())),
        Code::WebhookNotFound => s(Error::WebhookNotFound("01a2224222ec71bdb9d7a84d55c0e1f2".into())),
        Code::DeliveryNotFound => s(Error::DeliveryNotFound {
            webhook: "01a2224222ec71bdb9d7a84d55c0e1f2".into(),
            delivery: "01a2224222ec71bdb9d7a84e09b3c4d5".into(),
        }),
        Code::EventGone => s(Error::EventGone("01a2224222ec71bdb9d7a84e09b3c4d5".into())),
        Code::ClusterNotFound => s(Error::ClusterNotFound("01a2224222ec71bdb9d7a84c0a4e1d77".into())),
        Code::CropNotFound => s(Error::CropNotFound("01a2224222ec71bdb9d7a84b8110f255".into())),
        Code::ModelNotFound => s(Error::ModelNotFound("no face has an embedding by dlib-resnet-v1@sha256:5553".into())),
        Code::Unauthorized => {
            ApiError::Unauthorized("an API key is required: send `Authorization: Bearer <key>`".into())
        }
        Code::Forbidden => ApiError::Forbidden("key 5f0c2a9e41d7b366 has scope match, this needs enroll".into()),
        Code::RouteNotFound => ApiError::RouteNotFound,
        Code::MethodNotAllowed => ApiError::MethodNotAllowed,
        Code::RequestTimeout => ApiError::Timeout(60.0),
        Code::BodyTooLarge => ApiError::BodyTooLarge(10 << 20),
        Code::UnsupportedMediaType => ApiError::UnsupportedMediaType(
            "unsupported Content-Type \"text/plain\": send multipart/form-data, an image/* body, or application/json"
                .into(),
        ),
        Code::InvalidImage => s(Error::InvalidImage(
            "the data is not an image in a supported format (JPEG, PNG, WebP, BMP, GIF, TIFF)".into(),
        )),
        Code::ImageTooLarge => {
            s(Error::ImageTooLarge("the image is 60000x60000, larger than the limit of 20000 pixels per side".into()))
        }
        Code::NoFace => s(Error::NoFace),
        Code::MultipleFaces => s(Error::MultipleFaces(3)),
        Code::FaceTooSmall => s(Error::FaceTooSmall { size: 24.0, min: 40.0 }),
        Code::FaceTooBlurry => s(Error::FaceTooBlurry { sharpness: 3.2, min: 10.0 }),
        Code::NoEnrolledFaces => s(Error::NoEnrolledFaces(id.into())),
        Code::ModelIncomplete => {
            s(Error::ModelIncomplete { model: "sface-2021dec-int8bq@sha256:fb14".into(), lacking: 3 })
        }
        Code::ModelInUse => s(Error::ModelInUse(
            "this service compares 120 faces by embeddings of sface-2021dec-int8bq@sha256:fb14 kept beside: \
             switch to it first (or prune another model)"
                .into(),
        )),
        Code::ModelMismatch => s(Error::ModelMismatch(
            "the embedding is by sface-2021dec@sha256:0ba9, the gallery compares by sface+dlib@sha256:9c1e".into(),
        )),
        Code::RememberDisabled => s(Error::RememberDisabled),
        Code::Overloaded => s(Error::Overloaded),
        Code::RateLimited => ApiError::RateLimited(
            "key 3f2a9c0d1e4b5a69 is over its scope's rate limit (match: 20/s); retry after 1 s".into(),
            1,
        ),
        Code::Unavailable => s(Error::Unavailable("the service is shutting down".into())),
        Code::DatabaseUnavailable => {
            s(Error::DatabaseUnavailable("the database cannot be reached: writes are refused until it is back".into()))
        }
        Code::Internal => s(Error::Internal(anyhow::anyhow!("example"))),
    }
}

/// The status of every error: its code's, from the one table.
pub fn status(e: &ApiError) -> StatusCode {
    e.code().status()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status(&self);
        if let ApiError::Service(Error::Internal(cause)) = &self {
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        let mut response = (status, Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) {
            let secs = match &self {
                ApiError::RateLimited(_, secs) => *secs,
                _ => RETRY_AFTER_SECS,
            };
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
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
    fn every_code_has_one_example_of_its_own() {
        let samples = ApiError::samples();
        assert_eq!(samples.len(), Code::ALL.len());
        for (e, &code) in samples.iter().zip(Code::ALL) {
            assert_eq!(e.code(), code, "the example of {code} answers {}", e.code());
        }
    }

    #[test]
    fn the_body_is_the_documented_shape() {
        let body = serde_json::to_value(ApiError::param("threshold", "too high").body()).unwrap();
        assert_eq!(body["error"]["code"], "invalid_parameter");
        assert_eq!(body["error"]["param"], "threshold");
        let body = serde_json::to_value(example(Code::Internal).body()).unwrap();
        assert_eq!(body["error"]["message"], "internal error; the cause is in the service log");
        assert!(body["error"].get("param").is_none(), "{body}");
    }
}
