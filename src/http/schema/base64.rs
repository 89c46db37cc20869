//! JSON request bodies carry their images as base64 strings. The input
//! structs document each image as a file (`Image`), which is what multipart
//! sends; for every such struct the document gets a JSON twin, `<Name>Json`,
//! the same struct with each image a `Base64Image`, and the operations'
//! `application/json` bodies point at the twin.
use std::collections::BTreeMap;

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{OpenApi, Ref, RefOr};

/// Standard base64 with its padding, as the pattern states it. The service
/// accepts more (URL-safe letters, no padding, white space, a `data:` URL
/// prefix); the pattern gives the canonical spelling, whose every string
/// it decodes.
const CANONICAL_BASE64: &str =
    "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=|[A-Za-z0-9+/]{4})$";

fn base64_image() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .content_encoding("base64")
        .content_media_type("image/*")
        .min_length(Some(4))
        .pattern(Some(CANONICAL_BASE64))
        .description(Some(
            "A photo in base64: standard or URL-safe letters, padding optional, white space and a `data:` URL \
             prefix allowed",
        ))
        .into()
}

/// Adds the JSON twins and points the JSON request bodies at them.
pub fn base64_in_json_bodies(openapi: &mut OpenApi) {
    let Some(components) = openapi.components.as_mut() else { return };
    let image = Ref::from_schema_name("Image").ref_location;
    let mut twins: BTreeMap<String, String> = BTreeMap::new();
    for (name, schema) in components.schemas.clone() {
        let RefOr::T(Schema::Object(mut object)) = schema else { continue };
        let mut images = 0;
        for property in object.properties.values_mut() {
            if matches!(property, RefOr::Ref(r) if r.ref_location == image) {
                *property = RefOr::Ref(Ref::from_schema_name("Base64Image"));
                images += 1;
            }
        }
        if images > 0 {
            let twin = format!("{name}Json");
            components.schemas.insert(twin.clone(), RefOr::T(Schema::Object(object)));
            twins.insert(Ref::from_schema_name(name).ref_location, twin);
        }
    }
    if twins.is_empty() {
        return;
    }
    components.schemas.insert("Base64Image".into(), base64_image());
    for item in openapi.paths.paths.values_mut() {
        let ops = [&mut item.post, &mut item.put, &mut item.patch];
        for body in ops.into_iter().flatten().filter_map(|op| op.request_body.as_mut()) {
            let RefOr::T(body) = body else { continue };
            let Some(RefOr::T(json)) = body.content.get_mut("application/json") else { continue };
            let twin = match &json.schema {
                Some(RefOr::Ref(r)) => twins.get(&r.ref_location),
                _ => None,
            };
            if let Some(twin) = twin {
                json.schema = Some(RefOr::Ref(Ref::from_schema_name(twin)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn every_canonical_base64_string_decodes_and_others_do_not_match() {
        let pattern = regex::Regex::new(CANONICAL_BASE64).unwrap();
        let engine = base64::engine::general_purpose::STANDARD;
        for n in 1..40usize {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + n) as u8).collect();
            let text = engine.encode(&bytes);
            assert!(pattern.is_match(&text), "{text}");
            assert_eq!(crate::http::decode_base64(&text).unwrap(), bytes);
        }
        // Non-zero bits after the last byte, a lone character, no padding.
        for bad in ["AB==", "AAB=", "A", "AAA", "AA=", "aGVsbG8"] {
            assert!(!pattern.is_match(bad), "{bad}");
        }
        // Each pattern-valid tail decodes.
        for tail in ["AQ==", "Ag==", "Aw==", "AAE=", "AAQ=", "AA8="] {
            let ok = pattern.is_match(tail);
            assert_eq!(ok, crate::http::decode_base64(tail).is_ok(), "{tail}");
        }
    }
}
