//! The one error type of the service layer. Every variant has a stable code;
//! `http::error` maps each, exhaustively, to an HTTP status.
use crate::engine::EngineError;
use crate::store::StoreError;
use crate::vision::PipelineError;
use crate::vision::decode::DecodeError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid `{name}`: {message}")]
    InvalidParameter { name: &'static str, message: String },
    #[error("{0}")]
    MissingImage(String),
    #[error("invalid JSON body: {0}")]
    InvalidJson(String),
    #[error("invalid base64 image: {0}")]
    InvalidBase64(String),
    #[error("no person with id {0:?}")]
    PersonNotFound(String),
    #[error("no face with id {0:?} for this person")]
    FaceNotFound(String),
    #[error("no API key with id {0:?}")]
    KeyNotFound(String),
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
    #[error("{0}")]
    InvalidImage(String),
    #[error("{0}")]
    ImageTooLarge(String),
    #[error("no face was found in the image")]
    NoFace,
    #[error("the image shows {0} faces; enroll a photo with exactly one, or pass face=largest")]
    MultipleFaces(usize),
    #[error("the face is {size:.0} px across, smaller than the minimum of {min:.0} px")]
    FaceTooSmall { size: f32, min: f32 },
    #[error("the face is too blurry (sharpness {sharpness:.1}, minimum {min:.1})")]
    FaceTooBlurry { sharpness: f32, min: f32 },
    #[error("person {0:?} has no enrolled faces to compare with")]
    NoEnrolledFaces(String),
    #[error("the service is busy: the inference queue is full, retry shortly")]
    Overloaded,
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl Error {
    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidRequest(_) => "invalid_request",
            Error::InvalidParameter { .. } => "invalid_parameter",
            Error::MissingImage(_) => "missing_image",
            Error::InvalidJson(_) => "invalid_json",
            Error::InvalidBase64(_) => "invalid_base64",
            Error::PersonNotFound(_) => "person_not_found",
            Error::FaceNotFound(_) => "face_not_found",
            Error::KeyNotFound(_) => "key_not_found",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::RouteNotFound => "not_found",
            Error::MethodNotAllowed => "method_not_allowed",
            Error::BodyTooLarge(_) => "body_too_large",
            Error::Timeout(_) => "request_timeout",
            Error::UnsupportedMediaType(_) => "unsupported_media_type",
            Error::InvalidImage(_) => "invalid_image",
            Error::ImageTooLarge(_) => "image_too_large",
            Error::NoFace => "no_face",
            Error::MultipleFaces(_) => "multiple_faces",
            Error::FaceTooSmall { .. } => "face_too_small",
            Error::FaceTooBlurry { .. } => "face_too_blurry",
            Error::NoEnrolledFaces(_) => "no_enrolled_faces",
            Error::Overloaded => "overloaded",
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal_error",
        }
    }

    pub fn param(name: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidParameter { name, message: message.into() }
    }

    /// One error of every kind, with a typical message: the examples of the
    /// OpenAPI document and the README's table.
    pub fn samples() -> Vec<Error> {
        let all = vec![
            Error::InvalidRequest("invalid multipart body: missing boundary".into()),
            Error::param("threshold", "must be a cosine similarity from 0 to 1"),
            Error::MissingImage(
                "no `image` image: send it as a multipart field, an image/* body, or base64 in JSON".into(),
            ),
            Error::InvalidJson("expected value at line 1 column 1".into()),
            Error::InvalidBase64("Invalid symbol 33, offset 0.".into()),
            Error::PersonNotFound("01a2224222ec71bdb9d7a84a1ee5db30".into()),
            Error::FaceNotFound("01a2224222ec71bdb9d7a84b8110f255".into()),
            Error::KeyNotFound("5f0c2a9e41d7b366".into()),
            Error::Unauthorized("an API key is required: send `Authorization: Bearer <key>`".into()),
            Error::Forbidden("key 5f0c2a9e41d7b366 has scope match, this needs enroll".into()),
            Error::RouteNotFound,
            Error::MethodNotAllowed,
            Error::Timeout(60.0),
            Error::BodyTooLarge(10 << 20),
            Error::UnsupportedMediaType(
                "unsupported Content-Type \"text/plain\": send multipart/form-data, an image/* body, or application/json"
                    .into(),
            ),
            Error::InvalidImage(
                "the data is not an image in a supported format (JPEG, PNG, WebP, BMP, GIF, TIFF)".into(),
            ),
            Error::ImageTooLarge("the image is 60000x60000, larger than the limit of 20000 pixels per side".into()),
            Error::NoFace,
            Error::MultipleFaces(3),
            Error::FaceTooSmall { size: 24.0, min: 40.0 },
            Error::FaceTooBlurry { sharpness: 3.2, min: 10.0 },
            Error::NoEnrolledFaces("01a2224222ec71bdb9d7a84a1ee5db30".into()),
            Error::Overloaded,
            Error::Unavailable("the service is shutting down".into()),
            Error::Internal(anyhow::anyhow!("example")),
        ];
        // A new variant does not compile until it is listed above too.
        for e in &all {
            match e {
                Error::InvalidRequest(_)
                | Error::InvalidParameter { .. }
                | Error::MissingImage(_)
                | Error::InvalidJson(_)
                | Error::InvalidBase64(_)
                | Error::PersonNotFound(_)
                | Error::FaceNotFound(_)
                | Error::KeyNotFound(_)
                | Error::Unauthorized(_)
                | Error::Forbidden(_)
                | Error::RouteNotFound
                | Error::MethodNotAllowed
                | Error::Timeout(_)
                | Error::BodyTooLarge(_)
                | Error::UnsupportedMediaType(_)
                | Error::InvalidImage(_)
                | Error::ImageTooLarge(_)
                | Error::NoFace
                | Error::MultipleFaces(_)
                | Error::FaceTooSmall { .. }
                | Error::FaceTooBlurry { .. }
                | Error::NoEnrolledFaces(_)
                | Error::Overloaded
                | Error::Unavailable(_)
                | Error::Internal(_) => {}
            }
        }
        all
    }
}

/// Failures inside the pipeline after decoding are bugs or model faults.
impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        Error::Internal(e)
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::TooLarge { .. } => Error::ImageTooLarge(e.to_string()),
            DecodeError::Empty => Error::MissingImage("the image is empty".into()),
            DecodeError::UnknownFormat | DecodeError::Malformed(_) => Error::InvalidImage(e.to_string()),
        }
    }
}

impl From<PipelineError> for Error {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::Decode(d) => d.into(),
            PipelineError::Inference(e) => Error::Internal(e),
        }
    }
}

impl From<EngineError> for Error {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Overloaded => Error::Overloaded,
            EngineError::Stopped => Error::Unavailable("the service is shutting down".into()),
            EngineError::Panicked => Error::Internal(anyhow::anyhow!("an inference job panicked")),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::PersonNotFound(id) => Error::PersonNotFound(id),
            other => Error::Internal(other.into()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_cover_every_code_once() {
        let codes: Vec<&str> = Error::samples().iter().map(Error::code).collect();
        let unique: std::collections::BTreeSet<&str> = codes.iter().copied().collect();
        assert_eq!(unique.len(), codes.len(), "{codes:?}");
        assert_eq!(codes.len(), 25, "a variant was added: list it in samples()");
    }
}
