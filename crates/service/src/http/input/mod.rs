//! Request input. A handler names its input struct, which derives
//! `Deserialize` and `ToSchema` (the documented request body) and
//! implements [`Form`]: the fields that carry images and the rules beyond
//! the types. [`Input`] reads it from any of the three ways a client may
//! send it: `multipart/form-data`, a raw `image/*` body with the other
//! fields in the query string, or a JSON object with the images in base64.
//! [`JsonBody`] reads JSON-only bodies and [`QueryParams`] query strings
//! through the same deserializer. Every failure is one of our JSON errors
//! and names the field it is about.
mod fields;
mod types;

use axum::extract::{FromRequest, FromRequestParts, Multipart, Path, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use base64::Engine as _;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::ApiError;
use super::AppState;
use crate::service::error::Error;
use fields::{Field, FieldError, Fields};
pub use types::{ExternalId, Image, KeepFace, Metadata, Name, OneFace};

/// Most multipart parts accepted in one request.
pub const MAX_PARTS: usize = 16;

/// A handler's input: what its fields are and the rules they must meet.
pub trait Form: DeserializeOwned {
    /// The fields that carry images, every one required and non-empty. A
    /// raw `image/*` body is the first.
    const IMAGES: &'static [&'static str] = &[];
    /// Whether the images may be left out (the form then says what else it takes).
    const IMAGES_OPTIONAL: bool = false;

    /// Rules beyond the types (ranges that depend on the configuration).
    fn check(&self, _state: &AppState) -> Result<(), ApiError> {
        Ok(())
    }
}

/// A whole number within `range`, or a 400 naming the parameter.
pub fn within(name: &'static str, value: Option<u32>, range: std::ops::RangeInclusive<u32>) -> Result<(), ApiError> {
    match value {
        Some(v) if !range.contains(&v) => {
            Err(Error::param(name, format!("must be a whole number from {} to {}", range.start(), range.end())).into())
        }
        _ => Ok(()),
    }
}

/// The input struct `T`, read from multipart, a raw image body with the
/// query string, or base64 JSON.
pub struct Input<T>(pub T);

/// `T` read from a JSON object body.
pub struct JsonBody<T>(pub T);

/// `T` read from the query string.
pub struct QueryParams<T>(pub T);

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        match e.field {
            Some(name) => Error::param(name, e.message).into(),
            None => Error::InvalidRequest(e.message).into(),
        }
    }
}

/// Reads `T` from the fields and applies its rules.
fn read<T: Form>(fields: Vec<(String, Field)>, state: &AppState) -> Result<T, ApiError> {
    let value = T::deserialize(Fields(fields))?;
    value.check(state)?;
    Ok(value)
}

fn content_type(req: &Request) -> String {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The query string's fields, as text.
fn query_fields(query: Option<&str>) -> Result<Vec<(String, Field)>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|e| Error::InvalidRequest(format!("invalid query string: {e}")))?;
    Ok(pairs.into_iter().map(|(k, v)| (k, Field::Text(v))).collect())
}

/// Decodes base64 (standard or URL-safe, padded or not, an optional
/// `data:...;base64,` prefix and whitespace allowed).
pub fn decode_base64(s: &str) -> Result<Vec<u8>, ApiError> {
    let s = match s.find(";base64,") {
        Some(i) if s.starts_with("data:") => &s[i + 8..],
        _ => s,
    };
    let clean: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let trimmed = clean.trim_end_matches('=');
    let engine = if trimmed.contains(['-', '_']) {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
    } else {
        base64::engine::general_purpose::STANDARD_NO_PAD
    };
    engine.decode(trimmed).map_err(|e| ApiError::InvalidBase64(e.to_string()))
}

fn invalid_multipart(e: axum::extract::multipart::MultipartError, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::BodyTooLarge(limit)
    } else {
        Error::InvalidRequest(format!("invalid multipart body: {}", e.body_text())).into()
    }
}

/// Multipart parts: image fields as bytes, the others as UTF-8 text.
async fn multipart_fields(req: Request, state: &AppState, images: &[&str]) -> Result<Vec<(String, Field)>, ApiError> {
    let limit = state.body_limit;
    let mut mp = Multipart::from_request(req, state)
        .await
        .map_err(|e| Error::InvalidRequest(format!("invalid multipart body: {}", e.body_text())))?;
    let mut fields: Vec<(String, Field)> = Vec::new();
    while let Some(part) = mp.next_field().await.map_err(|e| invalid_multipart(e, limit))? {
        if fields.len() == MAX_PARTS {
            return Err(Error::InvalidRequest(format!("more than {MAX_PARTS} multipart parts")).into());
        }
        let name = part.name().unwrap_or_default().to_string();
        let data = part.bytes().await.map_err(|e| invalid_multipart(e, limit))?;
        let value = if images.contains(&name.as_str()) {
            if fields.iter().any(|(k, _)| *k == name) {
                return Err(Error::InvalidRequest(format!("more than one `{name}` part")).into());
            }
            Field::Bytes(data)
        } else {
            let text = String::from_utf8(data.to_vec())
                .map_err(|_| Error::InvalidRequest(format!("the `{name}` part is not UTF-8 text")))?;
            Field::Text(text)
        };
        fields.push((name, value));
    }
    Ok(fields)
}

/// A JSON object body's members; image members are base64, decoded here.
async fn json_fields(req: Request, limit: usize, images: &[&str]) -> Result<Vec<(String, Field)>, ApiError> {
    let body = body_bytes(req, limit).await?;
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    let serde_json::Value::Object(map) = value else {
        return Err(ApiError::InvalidJson("the body must be a JSON object".into()));
    };
    let mut fields = Vec::with_capacity(map.len());
    for (k, v) in map {
        let value = match v {
            // An absent image, reported as missing.
            serde_json::Value::Null if images.contains(&k.as_str()) => continue,
            serde_json::Value::String(s) if images.contains(&k.as_str()) => Field::Bytes(decode_base64(&s)?.into()),
            _ if images.contains(&k.as_str()) => {
                return Err(ApiError::InvalidBase64(format!("`{k}` must be a base64 string")));
            }
            v => Field::json(v),
        };
        fields.push((k, value));
    }
    Ok(fields)
}

/// Every image field present and non-empty, or a 400 saying how to send it.
fn require_images(fields: &[(String, Field)], images: &[&str]) -> Result<(), ApiError> {
    for name in images {
        match fields.iter().rev().find(|(k, _)| k == name) {
            Some((_, Field::Bytes(b))) if !b.is_empty() => {}
            Some(_) => return Err(Error::MissingImage(format!("the `{name}` image is empty")).into()),
            None => {
                return Err(Error::MissingImage(format!(
                    "no `{name}` image: send it as a multipart field, an image/* body, or base64 in JSON"
                ))
                .into());
            }
        }
    }
    Ok(())
}

impl<T: Form> FromRequest<AppState> for Input<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let mut fields = query_fields(req.uri().query())?;
        let ct = content_type(&req);
        let body = match ct.as_str() {
            "multipart/form-data" => multipart_fields(req, state, T::IMAGES).await?,
            "application/json" => json_fields(req, state.body_limit, T::IMAGES).await?,
            ct if ct.starts_with("image/") || ct == "application/octet-stream" => {
                let name = T::IMAGES.first().copied().unwrap_or("image");
                vec![(name.to_string(), Field::Bytes(body_bytes(req, state.body_limit).await?))]
            }
            "" => {
                return Err(ApiError::UnsupportedMediaType(
                    "no Content-Type: send multipart/form-data, an image/* body, or application/json".into(),
                ));
            }
            other => {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "unsupported Content-Type {other:?}: send multipart/form-data, an image/* body, or application/json"
                )));
            }
        };
        // Image fields come from the body only.
        fields.retain(|(k, _)| !T::IMAGES.contains(&k.as_str()));
        fields.extend(body);
        if !T::IMAGES_OPTIONAL {
            require_images(&fields, T::IMAGES)?;
        }
        read(fields, state).map(Input)
    }
}

impl<T: Form> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let ct = content_type(&req);
        if ct != "application/json" {
            return Err(ApiError::UnsupportedMediaType(format!("expected application/json, got {ct:?}")));
        }
        let fields = json_fields(req, state.body_limit, &[]).await?;
        // A body of the wrong shape (an unknown member, say) is invalid JSON
        // for this operation; a member's bad value is an invalid parameter.
        let value = T::deserialize(Fields(fields)).map_err(|e| match e.field {
            Some(_) => ApiError::from(e),
            None => ApiError::InvalidJson(e.message),
        })?;
        value.check(state)?;
        Ok(JsonBody(value))
    }
}

impl<T: Form> FromRequestParts<AppState> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        read(query_fields(parts.uri.query())?, state).map(QueryParams)
    }
}

async fn body_bytes(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, &()).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge(limit)
        } else {
            Error::InvalidRequest(format!("cannot read the body: {}", e.body_text())).into()
        }
    })
}

/// Path parameters, with our error for an undecodable segment (invalid
/// UTF-8 in a percent-encoded id, say) instead of axum's plain-text one.
pub struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(PathParams(v)),
            Err(e) => Err(Error::InvalidRequest(format!("invalid path: {}", e.body_text())).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_in_its_common_spellings() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode_base64("data:image/png;base64,aGVs\nbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("-_8").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(decode_base64("+/8=").unwrap(), vec![0xfb, 0xff]);
        assert!(matches!(decode_base64("not base64!"), Err(ApiError::InvalidBase64(_))));
    }

    #[test]
    fn images_are_required_and_non_empty() {
        let image = |b: &'static [u8]| ("image".to_string(), Field::Bytes(Bytes::from_static(b)));
        assert!(require_images(&[image(b"x")], &["image"]).is_ok());
        let code = |r: Result<(), ApiError>| r.unwrap_err().code().name();
        assert_eq!(code(require_images(&[image(b"")], &["image"])), "missing_image");
        assert_eq!(code(require_images(&[], &["image"])), "missing_image");
        let text = ("image".to_string(), Field::Text("x".into()));
        assert_eq!(code(require_images(&[text], &["image"])), "missing_image");
    }
}
