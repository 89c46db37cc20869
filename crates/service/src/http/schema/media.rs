//! One input struct, two encodings. The image endpoints' input structs
//! document each image as a file (`Image`) and their optional fields as
//! nullable, as derived. Multipart has files but no null, so there the
//! struct is documented without `null` (a part is present or absent); a
//! JSON body has null but no files, so the document gets a JSON twin,
//! `<Name>Json`, the same struct with each image a `Base64Image`, and the
//! operations' `application/json` bodies point at it.
use std::collections::BTreeMap;

use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, ObjectBuilder, Schema, SchemaType, Type};
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

fn is_null(schema: &RefOr<Schema>) -> bool {
    matches!(schema, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null))
}

/// The schema without its `null` alternative: `[T, null]` becomes `T`,
/// `oneOf: [X, null]` becomes `X`.
fn without_null(schema: &mut RefOr<Schema>) {
    match schema {
        RefOr::T(Schema::Object(o)) => {
            if let SchemaType::Array(types) = &o.schema_type {
                let kept: Vec<Type> = types.iter().filter(|t| **t != Type::Null).cloned().collect();
                o.schema_type = match kept.as_slice() {
                    [one] => SchemaType::Type(one.clone()),
                    _ => SchemaType::Array(kept),
                };
            }
        }
        RefOr::T(Schema::OneOf(one)) => {
            let mut kept: Vec<RefOr<Schema>> = one.items.iter().filter(|i| !is_null(i)).cloned().collect();
            if kept.len() == 1 {
                *schema = kept.remove(0);
            } else {
                one.items = kept;
            }
        }
        _ => {}
    }
}

/// Documents each image endpoint's input struct for multipart (no nulls)
/// and adds its JSON twin (base64 images), which the JSON bodies point at.
pub fn encodings_of_image_inputs(openapi: &mut OpenApi) {
    let Some(components) = openapi.components.as_mut() else { return };
    let image = Ref::from_schema_name("Image").ref_location;
    let mut twins: BTreeMap<String, String> = BTreeMap::new();
    for (name, schema) in components.schemas.clone() {
        let RefOr::T(Schema::Object(mut json)) = schema else { continue };
        let is_image = |p: &RefOr<Schema>| matches!(p, RefOr::Ref(r) if r.ref_location == image);
        if !json.properties.values().any(is_image) {
            continue;
        }
        let mut multipart = json.clone();
        multipart.properties.values_mut().for_each(without_null);
        components.schemas.insert(name.clone(), RefOr::T(Schema::Object(multipart)));
        for property in json.properties.values_mut().filter(|p| is_image(p)) {
            *property = RefOr::Ref(Ref::from_schema_name("Base64Image"));
        }
        let twin = format!("{name}Json");
        components.schemas.insert(twin.clone(), RefOr::T(Schema::Object(json)));
        twins.insert(Ref::from_schema_name(name).ref_location, twin);
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

/// States that the input struct `name` (and its JSON twin) needs at least
/// one of `fields`, which the derived schema cannot say.
pub fn require_one_of(openapi: &mut OpenApi, name: &str, fields: &[&str]) {
    let Some(components) = openapi.components.as_mut() else { return };
    let present = |f: &str| {
        ObjectBuilder::new().required(f).property(f, ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)))
    };
    let alternatives = fields.iter().fold(AnyOfBuilder::new(), |any, f| any.item(present(f))).build();
    for schema_name in [name.to_string(), format!("{name}Json")] {
        let Some(schema) = components.schemas.get_mut(&schema_name) else { continue };
        let RefOr::T(Schema::Object(object)) = schema else { continue };
        let description = object.description.take();
        let whole =
            AllOfBuilder::new().item(object.clone()).item(Schema::AnyOf(alternatives.clone())).description(description);
        *schema = whole.into();
    }
}

/// Documents that the struct `name` (and its JSON twin) takes exactly one
/// of several alternatives: each lists the fields it needs (present, not
/// null); every other field of `fields` must then be absent or null.
pub fn require_exactly_one_of(openapi: &mut OpenApi, name: &str, alternatives: &[&[&str]], fields: &[&str]) {
    let Some(components) = openapi.components.as_mut() else { return };
    let null = || ObjectBuilder::new().schema_type(Type::Null);
    // "Anything but null", as JSON Schema types (utoipa has no `not`).
    let not_null = || {
        let types = vec![Type::String, Type::Number, Type::Integer, Type::Boolean, Type::Array, Type::Object];
        ObjectBuilder::new().schema_type(SchemaType::Array(types))
    };
    let one = alternatives
        .iter()
        .fold(utoipa::openapi::schema::OneOfBuilder::new(), |all, needed| {
            let alt = fields.iter().fold(ObjectBuilder::new(), |o, f| match needed.contains(f) {
                true => o.required(*f).property(*f, not_null()),
                false => o.property(*f, null()),
            });
            all.item(alt)
        })
        .build();
    for schema_name in [name.to_string(), format!("{name}Json")] {
        let Some(schema) = components.schemas.get_mut(&schema_name) else { continue };
        let RefOr::T(Schema::Object(object)) = schema else { continue };
        let description = object.description.take();
        let whole = AllOfBuilder::new().item(object.clone()).item(Schema::OneOf(one.clone())).description(description);
        *schema = whole.into();
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
