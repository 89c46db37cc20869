//! Every stable error code, written once: its name (what clients branch
//! on), its HTTP status, and what it means. The service's [`Error`] and the
//! transport's errors each map to a code exhaustively; the status map, the
//! OpenAPI document's list and its examples all read from this table, so a
//! code cannot exist without a status (and the edge's example table, an
//! exhaustive match on [`Code`], does not compile without its example).
//!
//! [`Error`]: super::Error
use http::StatusCode;

macro_rules! error_codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = $name:literal, $status:ident; )*) => {
        /// A stable, machine-readable error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Code {
            /// Every code, in the order the OpenAPI document lists them.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The code as clients see it (`person_not_found`).
            pub const fn name(self) -> &'static str {
                match self {
                    $( Code::$variant => $name, )*
                }
            }

            /// The HTTP status every error of this code answers with.
            pub const fn status(self) -> StatusCode {
                match self {
                    $( Code::$variant => StatusCode::$status, )*
                }
            }
        }
    };
}

error_codes! {
    /// The request cannot be read (e.g. a malformed multipart body).
    InvalidRequest = "invalid_request", BAD_REQUEST;
    /// A field or query parameter is out of its range (`param` names it).
    InvalidParameter = "invalid_parameter", BAD_REQUEST;
    /// The image the operation needs was not sent.
    MissingImage = "missing_image", BAD_REQUEST;
    /// The JSON body does not parse.
    InvalidJson = "invalid_json", BAD_REQUEST;
    /// A base64 image does not decode.
    InvalidBase64 = "invalid_base64", BAD_REQUEST;
    PersonNotFound = "person_not_found", NOT_FOUND;
    FaceNotFound = "face_not_found", NOT_FOUND;
    KeyNotFound = "key_not_found", NOT_FOUND;
    WebhookNotFound = "webhook_not_found", NOT_FOUND;
    /// The webhook has no attempt with this id.
    DeliveryNotFound = "delivery_not_found", NOT_FOUND;
    /// The attempt's event is no longer kept (events are kept a week after every webhook passed them).
    EventGone = "event_gone", GONE;
    /// No cluster with this id has unassigned faces (named, emptied, or never made).
    ClusterNotFound = "cluster_not_found", NOT_FOUND;
    /// The face exists, but no crop of it was kept (`--keep-crops` was off when it was stored).
    CropNotFound = "crop_not_found", NOT_FOUND;
    /// No face has embeddings by this model (or the manifest does not know it).
    ModelNotFound = "model_not_found", NOT_FOUND;
    /// No key, or an unknown or revoked one.
    Unauthorized = "unauthorized", UNAUTHORIZED;
    /// The key's scope is below the operation's.
    Forbidden = "forbidden", FORBIDDEN;
    /// No such route.
    RouteNotFound = "not_found", NOT_FOUND;
    MethodNotAllowed = "method_not_allowed", METHOD_NOT_ALLOWED;
    RequestTimeout = "request_timeout", REQUEST_TIMEOUT;
    BodyTooLarge = "body_too_large", PAYLOAD_TOO_LARGE;
    UnsupportedMediaType = "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE;
    /// The data is not an image in a supported format.
    InvalidImage = "invalid_image", UNPROCESSABLE_ENTITY;
    ImageTooLarge = "image_too_large", UNPROCESSABLE_ENTITY;
    NoFace = "no_face", UNPROCESSABLE_ENTITY;
    MultipleFaces = "multiple_faces", UNPROCESSABLE_ENTITY;
    FaceTooSmall = "face_too_small", UNPROCESSABLE_ENTITY;
    FaceTooBlurry = "face_too_blurry", UNPROCESSABLE_ENTITY;
    NoEnrolledFaces = "no_enrolled_faces", CONFLICT;
    /// Some faces lack an embedding by the model switched to.
    ModelIncomplete = "model_incomplete", CONFLICT;
    /// The embeddings to prune are the ones this service compares by.
    ModelInUse = "model_in_use", CONFLICT;
    /// An embedding given by value is not by the model the gallery compares by.
    ModelMismatch = "model_mismatch", UNPROCESSABLE_ENTITY;
    /// `remember=unknown` needs the service started with `--remember-unknown`.
    RememberDisabled = "remember_disabled", CONFLICT;
    /// The inference queue is full (answered with `Retry-After`).
    Overloaded = "overloaded", TOO_MANY_REQUESTS;
    /// A rate limit: the key's, the client address's without a key, or its
    /// failed authentications (answered with `Retry-After`).
    RateLimited = "rate_limited", TOO_MANY_REQUESTS;
    /// The service is shutting down or the database busy (with `Retry-After`).
    Unavailable = "unavailable", SERVICE_UNAVAILABLE;
    /// The database cannot be reached: writes wait until it is back.
    DatabaseUnavailable = "database_unavailable", SERVICE_UNAVAILABLE;
    /// A bug or a model fault: the cause is in the service log.
    Internal = "internal_error", INTERNAL_SERVER_ERROR;
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let names: std::collections::BTreeSet<&str> = Code::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), Code::ALL.len());
        assert!(
            names.iter().all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')),
            "{names:?}"
        );
    }

    #[test]
    fn every_status_is_an_error() {
        assert!(Code::ALL.iter().all(|c| c.status().is_client_error() || c.status().is_server_error()));
    }
}
