//! Request bodies: an image arrives as `multipart/form-data` (field `image`,
//! or `image_a`/`image_b`), as a raw body with an `image/*` content type, or
//! as JSON with base64 strings; other parameters come as form fields, JSON
//! members or the query string. Every failure is one of our JSON errors.
use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Multipart, Path, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use base64::Engine as _;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::ApiError;
use super::AppState;
use crate::error::Error;

/// Most multipart parts accepted in one request.
pub const MAX_PARTS: usize = 16;
/// Field names that carry images.
pub const IMAGE_FIELDS: [&str; 3] = ["image", "image_a", "image_b"];

/// The images and scalar parameters of a request.
#[derive(Debug, Default)]
pub struct ImageForm {
    pub images: HashMap<String, Bytes>,
    pub fields: HashMap<String, String>,
    /// JSON-valued parameters (`metadata`).
    pub json: HashMap<String, serde_json::Value>,
}

fn too_large(limit: usize) -> ApiError {
    ApiError::BodyTooLarge(limit)
}

fn content_type(req: &Request) -> String {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .unwrap_or_default()
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

impl FromRequest<AppState> for ImageForm {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.body_limit;
        let mut form = ImageForm::default();
        if let Ok(Query(q)) = Query::<HashMap<String, String>>::try_from_uri(req.uri()) {
            form.fields.extend(q);
        }
        let ct = content_type(&req);
        match ct.as_str() {
            "multipart/form-data" => {
                let mut mp = Multipart::from_request(req, state)
                    .await
                    .map_err(|e| Error::InvalidRequest(format!("invalid multipart body: {}", e.body_text())))?;
                let mut parts = 0;
                loop {
                    let field = match mp.next_field().await {
                        Ok(Some(f)) => f,
                        Ok(None) => break,
                        Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                            return Err(too_large(limit));
                        }
                        Err(e) => {
                            return Err(
                                Error::InvalidRequest(format!("invalid multipart body: {}", e.body_text())).into()
                            );
                        }
                    };
                    parts += 1;
                    if parts > MAX_PARTS {
                        return Err(Error::InvalidRequest(format!("more than {MAX_PARTS} multipart parts")).into());
                    }
                    let name = field.name().unwrap_or_default().to_string();
                    let data = field.bytes().await.map_err(|e| {
                        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                            too_large(limit)
                        } else {
                            Error::InvalidRequest(format!("invalid multipart body: {}", e.body_text())).into()
                        }
                    })?;
                    if IMAGE_FIELDS.contains(&name.as_str()) {
                        if form.images.insert(name.clone(), data).is_some() {
                            return Err(Error::InvalidRequest(format!("more than one `{name}` part")).into());
                        }
                    } else if name == "metadata" {
                        let v: serde_json::Value = serde_json::from_slice(&data)
                            .map_err(|e| Error::param("metadata", format!("not JSON: {e}")))?;
                        form.json.insert(name, v);
                    } else {
                        let text = String::from_utf8(data.to_vec())
                            .map_err(|_| Error::InvalidRequest(format!("the `{name}` part is not UTF-8 text")))?;
                        form.fields.insert(name, text);
                    }
                }
            }
            "application/json" => {
                let body = body_bytes(req, limit).await?;
                let value: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
                let serde_json::Value::Object(map) = value else {
                    return Err(ApiError::InvalidJson("the body must be a JSON object".into()));
                };
                for (k, v) in map {
                    match v {
                        serde_json::Value::String(s) if IMAGE_FIELDS.contains(&k.as_str()) => {
                            form.images.insert(k, Bytes::from(decode_base64(&s)?));
                        }
                        _ if IMAGE_FIELDS.contains(&k.as_str()) => {
                            return Err(ApiError::InvalidBase64(format!("`{k}` must be a base64 string")));
                        }
                        serde_json::Value::String(s) => {
                            form.fields.insert(k, s);
                        }
                        serde_json::Value::Null => {}
                        v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => {
                            form.fields.insert(k, v.to_string());
                        }
                        v => {
                            form.json.insert(k, v);
                        }
                    }
                }
            }
            ct if ct.starts_with("image/") || ct == "application/octet-stream" => {
                form.images.insert("image".into(), body_bytes(req, limit).await?);
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
        }
        Ok(form)
    }
}

async fn body_bytes(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, &()).await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            too_large(limit)
        } else {
            Error::InvalidRequest(format!("cannot read the body: {}", e.body_text())).into()
        }
    })
}

impl ImageForm {
    /// The named image, or a 400 saying how to send it.
    pub fn image(&mut self, name: &str) -> Result<Bytes, ApiError> {
        match self.images.remove(name) {
            Some(b) if !b.is_empty() => Ok(b),
            Some(_) => Err(Error::MissingImage(format!("the `{name}` image is empty")).into()),
            None => Err(Error::MissingImage(format!(
                "no `{name}` image: send it as a multipart field, an image/* body, or base64 in JSON"
            ))
            .into()),
        }
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// A numeric parameter, validated by `check`.
    pub fn number<T: std::str::FromStr>(
        &self,
        name: &'static str,
        check: impl Fn(&T) -> Result<(), String>,
    ) -> Result<Option<T>, ApiError> {
        let Some(raw) = self.text(name) else { return Ok(None) };
        let v: T = raw.trim().parse().map_err(|_| Error::param(name, format!("{raw:?} is not a valid number")))?;
        check(&v).map_err(|m| Error::param(name, m))?;
        Ok(Some(v))
    }
}

/// A JSON body (for the person endpoints), with our errors for every rejection.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let ct = content_type(&req);
        if ct != "application/json" {
            return Err(ApiError::UnsupportedMediaType(format!("expected application/json, got {ct:?}")));
        }
        let body = body_bytes(req, state.body_limit).await?;
        serde_json::from_slice(&body).map(JsonBody).map_err(|e| ApiError::InvalidJson(e.to_string()))
    }
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
}
