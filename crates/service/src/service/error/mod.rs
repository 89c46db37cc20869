//! The one error type of the service layer. Every variant has a stable
//! [`Code`] (the table in `code.rs` gives each its HTTP status). Errors only
//! the transport can have (routing, bodies, authentication) are
//! `http::ApiError`'s, with codes from the same table.
mod code;

use crate::engine::EngineError;
use crate::store::StoreError;
use crate::vision::PipelineError;
use crate::vision::decode::DecodeError;
pub use code::Code;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid `{name}`: {message}")]
    InvalidParameter { name: &'static str, message: String },
    #[error("{0}")]
    MissingImage(String),
    #[error("no person with id {0:?}")]
    PersonNotFound(String),
    #[error("no face with id {0:?}")]
    FaceNotFound(String),
    #[error("no cluster with id {0:?} has unassigned faces")]
    ClusterNotFound(String),
    #[error("face {0:?} has no kept crop: the service kept none when it was stored (--keep-crops)")]
    CropNotFound(String),
    #[error("no API key with id {0:?}")]
    KeyNotFound(String),
    #[error("no webhook with id {0:?}")]
    WebhookNotFound(String),
    #[error("webhook {webhook:?} has no delivery with id {delivery:?}")]
    DeliveryNotFound { webhook: String, delivery: String },
    #[error("the event of delivery {0:?} is no longer kept")]
    EventGone(String),
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
    /// No face has embeddings by this model (or it is not one the manifest knows).
    #[error("{0}")]
    ModelNotFound(String),
    #[error(
        "{lacking} faces have no embedding by {model}: run `visage reembed --to` that embedder first, or force the switch (those faces stay on their model)"
    )]
    ModelIncomplete { model: String, lacking: u64 },
    #[error("{0}")]
    ModelInUse(String),
    #[error("{0}")]
    ModelMismatch(String),
    #[error("remember=unknown keeps faces only when the service runs with --remember-unknown")]
    RememberDisabled,
    #[error("the service is busy: the inference queue is full, retry shortly")]
    Overloaded,
    #[error("{0}")]
    Unavailable(String),
    /// The database cannot be reached: writes are refused until it is back;
    /// a replica answers verify and identify from memory meanwhile.
    #[error("{0}")]
    DatabaseUnavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl Error {
    /// The stable, machine-readable code.
    pub fn code(&self) -> Code {
        match self {
            Error::InvalidRequest(_) => Code::InvalidRequest,
            Error::InvalidParameter { .. } => Code::InvalidParameter,
            Error::MissingImage(_) => Code::MissingImage,
            Error::PersonNotFound(_) => Code::PersonNotFound,
            Error::FaceNotFound(_) => Code::FaceNotFound,
            Error::ClusterNotFound(_) => Code::ClusterNotFound,
            Error::CropNotFound(_) => Code::CropNotFound,
            Error::KeyNotFound(_) => Code::KeyNotFound,
            Error::WebhookNotFound(_) => Code::WebhookNotFound,
            Error::DeliveryNotFound { .. } => Code::DeliveryNotFound,
            Error::EventGone(_) => Code::EventGone,
            Error::InvalidImage(_) => Code::InvalidImage,
            Error::ImageTooLarge(_) => Code::ImageTooLarge,
            Error::NoFace => Code::NoFace,
            Error::MultipleFaces(_) => Code::MultipleFaces,
            Error::FaceTooSmall { .. } => Code::FaceTooSmall,
            Error::FaceTooBlurry { .. } => Code::FaceTooBlurry,
            Error::NoEnrolledFaces(_) => Code::NoEnrolledFaces,
            Error::ModelNotFound(_) => Code::ModelNotFound,
            Error::ModelIncomplete { .. } => Code::ModelIncomplete,
            Error::ModelInUse(_) => Code::ModelInUse,
            Error::ModelMismatch(_) => Code::ModelMismatch,
            Error::RememberDisabled => Code::RememberDisabled,
            Error::Overloaded => Code::Overloaded,
            Error::Unavailable(_) => Code::Unavailable,
            Error::DatabaseUnavailable(_) => Code::DatabaseUnavailable,
            Error::Internal(_) => Code::Internal,
        }
    }

    pub fn param(name: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidParameter { name, message: message.into() }
    }
}

/// Whether a database error means the connection is gone (the server is
/// down, restarting or unreachable), not that the request was wrong.
pub fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        // SQLSTATE class 08 (connection exception) and 57P (operator
        // intervention: shutdown, crash recovery, cannot connect now).
        sqlx::Error::Database(d) => d.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
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
            PipelineError::MultipleFaces(n) => Error::MultipleFaces(n),
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
            // Every connection busy for the whole wait, or the pool closed at
            // shutdown: the request may be retried, it is not a bug.
            StoreError::Db(sqlx::Error::PoolTimedOut) => {
                Error::Unavailable("the database is busy: no connection was free in time".into())
            }
            StoreError::Db(sqlx::Error::PoolClosed) => Error::Unavailable("the database is closed".into()),
            StoreError::Db(e) if connection_lost(&e) => {
                Error::DatabaseUnavailable(format!("the database cannot be reached: {e}"))
            }
            other => Error::Internal(other.into()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_or_closed_pool_is_unavailable_not_internal() {
        assert_eq!(Error::from(StoreError::Db(sqlx::Error::PoolTimedOut)).code(), Code::Unavailable);
        assert_eq!(Error::from(StoreError::Db(sqlx::Error::PoolClosed)).code(), Code::Unavailable);
        assert_eq!(Error::from(StoreError::Db(sqlx::Error::RowNotFound)).code(), Code::Internal);
        let refused = sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into());
        assert_eq!(Error::from(StoreError::Db(refused)).code(), Code::DatabaseUnavailable);
        assert_eq!(Error::from(StoreError::PersonNotFound("p".into())).code(), Code::PersonNotFound);
    }
}
