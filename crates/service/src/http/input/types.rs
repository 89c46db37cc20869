//! The value types of request fields that carry their own rules: an image
//! (non-empty bytes), a person's name (`domain::valid_name`), metadata (a
//! JSON object of at most 16 KiB, or its JSON text in a multipart part), and
//! which face of a photo to use. Each reads itself (failing with the rule it
//! broke) and documents the same rule in its OpenAPI schema.
use std::borrow::Cow;

use bytes::Bytes;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat};
use utoipa::{PartialSchema, ToSchema};

use crate::domain::{FaceChoice, MAX_NAME_CHARS};

/// Largest metadata object accepted, serialised, in bytes.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// A photo: the bytes of a multipart part or a raw body, or base64 in JSON
/// (decoded before the struct is read).
#[derive(Debug, Clone)]
pub struct Image(pub Bytes);

impl<'de> Deserialize<'de> for Image {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bytes_;
        impl Visitor<'_> for Bytes_ {
            type Value = Image;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an image")
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Image, E> {
                Ok(Image(Bytes::from(v)))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Image, E> {
                Ok(Image(Bytes::copy_from_slice(v)))
            }
        }
        d.deserialize_byte_buf(Bytes_)
    }
}

impl PartialSchema for Image {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .min_length(Some(1))
            .description(Some(
                "A photo (JPEG, PNG, WebP, BMP, GIF or TIFF): a file in multipart, base64 in JSON (`Base64Image`)",
            ))
            .into()
    }
}

impl ToSchema for Image {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Image")
    }
}

/// A person's or a key's name, trimmed; the rules are `domain::valid_name`'s.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Name(pub String);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        crate::domain::valid_name(&raw).map(|n| Name(n.to_string())).map_err(de::Error::custom)
    }
}

/// Characters Rust's `str::trim` removes (Unicode White_Space), as a regex class body.
const WHITESPACE: &str = r"\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// Control characters (Unicode Cc), which a name may not hold once trimmed.
const CONTROL: &str = r"\u0000-\u001f\u007f-\u009f";

/// The regular expression of a valid name: optional white space around 1 to
/// `MAX_NAME_CHARS` characters without control characters, first and last
/// not white space (what `valid_name` accepts, checked in the tests).
pub fn name_pattern() -> String {
    let (w, c) = (WHITESPACE, CONTROL);
    let edge = format!("[^{w}{c}]");
    let inner = MAX_NAME_CHARS - 2;
    format!("^[{w}]*(?:{edge}|{edge}[^{c}]{{0,{inner}}}{edge})[{w}]*$")
}

impl PartialSchema for Name {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(name_pattern()))
            .description(Some(format!(
                "1 to {MAX_NAME_CHARS} characters, no control characters; white space around it is removed"
            )))
            .into()
    }
}

impl ToSchema for Name {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Name")
    }
}

/// Free-form metadata: a JSON object of at most 16 KiB serialised (in a
/// multipart part or the query string: its JSON text).
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata(pub serde_json::Value);

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(text) => {
                serde_json::from_str(&text).map_err(|e| de::Error::custom(format!("not JSON: {e}")))?
            }
            value => value,
        };
        if !value.is_object() {
            return Err(de::Error::custom("must be a JSON object"));
        }
        if value.to_string().len() > MAX_METADATA_BYTES {
            return Err(de::Error::custom(format!("larger than {MAX_METADATA_BYTES} bytes")));
        }
        Ok(Metadata(value))
    }
}

impl PartialSchema for Metadata {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(format!(
                "A JSON object of at most {} KiB, kept with the person (in multipart: its JSON text)",
                MAX_METADATA_BYTES / 1024
            )))
            .into()
    }
}

impl ToSchema for Metadata {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Metadata")
    }
}

/// The `face` parameter of the operations that use one face of a photo:
/// the domain's [`FaceChoice`], `single` or `largest` only (the others are
/// refused as the field's invalid value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneFace(pub FaceChoice);

impl<'de> Deserialize<'de> for OneFace {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match FaceChoice::deserialize(d)? {
            c @ (FaceChoice::Single | FaceChoice::Largest) => Ok(OneFace(c)),
            other => Err(de::Error::custom(format!("`{}` is not taken here: `single` or `largest`", other.name()))),
        }
    }
}

/// Which face of a photo with several to use.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase", title = "FaceParam")]
#[allow(dead_code)]
enum FaceParam {
    /// Exactly one face is required (409/422 otherwise).
    Single,
    /// The largest face.
    Largest,
}

impl PartialSchema for OneFace {
    fn schema() -> RefOr<Schema> {
        FaceParam::schema()
    }
}

impl ToSchema for OneFace {
    fn name() -> Cow<'static, str> {
        FaceParam::name()
    }
}

/// Which faces of a photo `POST /v1/faces` keeps: any [`FaceChoice`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct KeepFace(pub FaceChoice);

/// Which faces of a photo to keep.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase", title = "KeepFaceParam")]
#[allow(dead_code)]
enum KeepFaceParam {
    /// Every face (at most the service's `max_faces`), largest first.
    All,
    /// Exactly one face is required.
    Single,
    /// The largest face.
    Largest,
    /// The face nearest the photo's centre.
    Central,
}

impl PartialSchema for KeepFace {
    fn schema() -> RefOr<Schema> {
        KeepFaceParam::schema()
    }
}

impl ToSchema for KeepFace {
    fn name() -> Cow<'static, str> {
        KeepFaceParam::name()
    }
}

/// Longest external id, in characters.
pub const MAX_EXTERNAL_ID_CHARS: usize = 200;

/// A client's own id for a face: 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExternalId(pub String);

impl<'de> Deserialize<'de> for ExternalId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let n = s.chars().count();
        if n == 0 || n > MAX_EXTERNAL_ID_CHARS {
            return Err(de::Error::custom(format!("must be 1 to {MAX_EXTERNAL_ID_CHARS} characters, not {n}")));
        }
        if s.chars().any(char::is_control) {
            return Err(de::Error::custom("must not contain control characters"));
        }
        Ok(ExternalId(s))
    }
}

impl PartialSchema for ExternalId {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_EXTERNAL_ID_CHARS))
            .pattern(Some(format!("^[^{CONTROL}]*$")))
            .description(Some("The client's own id for the face (a file path, a camera event id), returned with it"))
            .into()
    }
}

impl ToSchema for ExternalId {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ExternalId")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::valid_name;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn the_documented_name_pattern_accepts_exactly_the_valid_names() {
        let pattern = regex::Regex::new(&name_pattern()).unwrap();
        let pieces = [
            "a", "Ada", " ", "\t", "\n", "\u{0}", "\u{7f}", "\u{85}", "\u{a0}", "\u{2003}", "\u{3000}", "é", "李",
            "\u{feff}", "\u{200b}", "-", "'", "\u{9f}", "\u{1680}",
        ];
        let mut rng = SmallRng::seed_from_u64(7);
        let mut checked = 0;
        for len in 0..8 {
            for _ in 0..400 {
                let mut s = String::new();
                for _ in 0..len {
                    s.push_str(pieces[rng.random_range(0..pieces.len())]);
                }
                assert_eq!(pattern.is_match(&s), valid_name(&s).is_ok(), "{s:?}");
                checked += 1;
            }
        }
        for s in
            ["x".repeat(MAX_NAME_CHARS), format!("  {}  ", "x".repeat(MAX_NAME_CHARS)), "x".repeat(MAX_NAME_CHARS + 1)]
        {
            assert_eq!(pattern.is_match(&s), valid_name(&s).is_ok(), "{} chars", s.len());
        }
        assert!(checked > 3000);
    }

    #[test]
    fn metadata_is_an_object_given_as_json_or_as_its_text() {
        let read = |v: serde_json::Value| Metadata::deserialize(v);
        assert_eq!(read(serde_json::json!({"a": 1})).unwrap().0, serde_json::json!({"a": 1}));
        assert_eq!(read(serde_json::json!("{\"a\": 1}")).unwrap().0, serde_json::json!({"a": 1}));
        assert!(read(serde_json::json!([1, 2])).is_err());
        assert!(read(serde_json::json!("[1]")).is_err());
        assert!(read(serde_json::json!("{")).is_err());
        let big = serde_json::json!({ "k": "x".repeat(MAX_METADATA_BYTES) });
        assert!(read(big).unwrap_err().to_string().contains("larger than"));
    }
}
