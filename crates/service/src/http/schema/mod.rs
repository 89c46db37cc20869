//! The OpenAPI schemas of the inner layers' types that the API returns, kept
//! here at the edge so that the domain, the store and the pipeline know
//! nothing of OpenAPI. `vision::Face` and `vision::EmbeddedFace` are written
//! out; the others are derived from a mirror struct (`documented_as!`). Each
//! names the fields of the type's serde form, which the tests check against
//! a serialised value.
use std::borrow::Cow;

use utoipa::openapi::schema::{AllOfBuilder, ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{KnownFormat, Ref, RefOr, SchemaFormat};
use utoipa::{PartialSchema, ToSchema};

use crate::domain::{ApiKey, AuditEntry, FaceRecord, Person};
use crate::domain::{BBox, Detection, Point, Quality, Scope};
use crate::vision::{EmbeddedFace, Face};

type Schemas = Vec<(String, RefOr<Schema>)>;

fn reference<T: ToSchema>() -> Ref {
    Ref::from_schema_name(T::name())
}

/// Registers `T` and everything it refers to.
fn register<T: ToSchema>(schemas: &mut Schemas) {
    schemas.push((T::name().into(), T::schema()));
    T::schemas(schemas);
}

/// `$ty` documented with the schema derived for `$doc`, a struct of the same
/// serde form, under the name `$name`.
macro_rules! documented_as {
    ($ty:ty, $doc:ty, $name:literal) => {
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                <$doc as utoipa::PartialSchema>::schema()
            }
        }

        impl utoipa::ToSchema for $ty {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($name)
            }

            fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
                <$doc as utoipa::ToSchema>::schemas(schemas);
            }
        }
    };
}

// Declared after the macro, which it uses.
mod answers;
mod calibration;
mod embedder_switch;
mod events;
mod health;
mod info;
mod media;
mod unassigned;

pub use events::{event_data_schema, event_schemas};
pub use media::{encodings_of_image_inputs, require_exactly_one_of, require_one_of};

/// The OpenAPI schema of five `[x, y]` landmarks (utoipa has no fixed arrays).
fn landmarks_schema() -> utoipa::openapi::schema::Array {
    let point = ArrayBuilder::new()
        .items(
            ObjectBuilder::new().schema_type(Type::Number).format(Some(SchemaFormat::KnownFormat(KnownFormat::Float))),
        )
        .min_items(Some(2))
        .max_items(Some(2))
        .description(Some("[x, y] in original-image pixels"));
    ArrayBuilder::new()
        .items(point)
        .min_items(Some(5))
        .max_items(Some(5))
        .description(Some("Right eye, left eye, nose tip, right and left mouth corners"))
        .build()
}

/// An axis-aligned box in image pixels.
#[allow(dead_code)]
#[derive(ToSchema)]
struct BBoxDoc {
    x: f32,
    y: f32,
    width: f32,
    height: f32,
}
documented_as!(BBox, BBoxDoc, "BBox");

/// One detected face, in the coordinates of the image it was found in.
#[allow(dead_code)]
#[derive(ToSchema)]
struct DetectionDoc {
    #[schema(rename = "box")]
    bbox: BBox,
    /// Right eye, left eye, nose tip, right and left mouth corners.
    #[schema(schema_with = landmarks_schema)]
    landmarks: [Point; 5],
    score: f32,
}
documented_as!(Detection, DetectionDoc, "Detection");

/// Simple, model-independent quality signals, so enrollment can refuse a
/// poor photo with a reason: how big the face is and how sharp.
#[allow(dead_code)]
#[derive(ToSchema)]
struct QualityDoc {
    /// The smaller side of the face box, in original-image pixels.
    face_size: f32,
    /// Distance between the eye centres, in original-image pixels.
    eye_distance: f32,
    /// Variance of the Laplacian over the aligned grey crop; sharp faces score
    /// in the hundreds, heavy blur in the tens or less.
    sharpness: f32,
}
documented_as!(Quality, QualityDoc, "Quality");

/// What a key may do; each scope includes the ones below it.
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
enum ScopeDoc {
    /// verify, identify, compare, detect, embed, info.
    Match,
    /// enroll (new persons and new faces), and everything `match` may do.
    Enroll,
    /// manage keys and persons (list, rename, delete), and everything else.
    Admin,
}
documented_as!(Scope, ScopeDoc, "Scope");

#[allow(dead_code)]
#[derive(ToSchema)]
struct PersonDoc {
    id: String,
    name: String,
    /// Free-form JSON object given by the client (at most 16 KiB).
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Value>,
    created_at: String,
    updated_at: String,
    /// Enrolled faces.
    face_count: i64,
}
documented_as!(Person, PersonDoc, "Person");

#[allow(dead_code)]
#[derive(ToSchema)]
struct FaceRecordDoc {
    id: String,
    /// The person the face is enrolled for; null while it is unassigned.
    person_id: Option<String>,
    /// The client's own id for the face, when it gave one.
    #[schema(max_length = 200)]
    external_id: Option<String>,
    /// The cluster of unassigned faces it belongs to; null once it has a person.
    cluster_id: Option<String>,
    #[schema(rename = "box")]
    bbox: BBox,
    #[schema(schema_with = landmarks_schema)]
    landmarks: [Point; 5],
    score: f32,
    quality: Quality,
    /// The embedder that produced the stored embedding.
    model: String,
    created_at: String,
}
documented_as!(FaceRecord, FaceRecordDoc, "FaceRecord");

/// A key as listed: never its secret.
#[allow(dead_code)]
#[derive(ToSchema)]
struct ApiKeyDoc {
    id: String,
    name: String,
    scope: Scope,
    created_at: String,
    revoked_at: Option<String>,
}
documented_as!(ApiKey, ApiKeyDoc, "ApiKey");

/// One audit record.
#[allow(dead_code)]
#[derive(ToSchema)]
struct AuditEntryDoc {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    subject: String,
}
documented_as!(AuditEntry, AuditEntryDoc, "AuditEntry");

impl PartialSchema for Face {
    fn schema() -> RefOr<Schema> {
        let quality = ObjectBuilder::new().property("quality", reference::<Quality>()).required("quality");
        AllOfBuilder::new()
            .item(reference::<Detection>())
            .item(quality)
            .description(Some("One face: where it is, how usable it is, and (when asked) its embedding."))
            .into()
    }
}

impl ToSchema for Face {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Face")
    }

    fn schemas(schemas: &mut Schemas) {
        register::<Detection>(schemas);
        register::<Quality>(schemas);
    }
}

impl PartialSchema for EmbeddedFace {
    fn schema() -> RefOr<Schema> {
        let float =
            ObjectBuilder::new().schema_type(Type::Number).format(Some(SchemaFormat::KnownFormat(KnownFormat::Float)));
        let rest = ObjectBuilder::new()
            .property("embedding", ArrayBuilder::new().items(float))
            .required("embedding")
            .property("model", ObjectBuilder::new().schema_type(Type::String))
            .required("model");
        AllOfBuilder::new()
            .item(reference::<Face>())
            .item(rest)
            .description(Some("A face with its embedding and model id, as `/v1/embed` returns it."))
            .into()
    }
}

impl ToSchema for EmbeddedFace {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("EmbeddedFace")
    }

    fn schemas(schemas: &mut Schemas) {
        register::<Face>(schemas);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The property names a schema gives, following `allOf` and references.
    fn properties(schema: &RefOr<Schema>, all: &Schemas) -> Vec<String> {
        match schema {
            RefOr::Ref(r) => {
                let name = r.ref_location.rsplit('/').next().unwrap_or_default();
                let (_, s) = all.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} not registered"));
                properties(s, all)
            }
            RefOr::T(Schema::AllOf(a)) => a.items.iter().flat_map(|i| properties(i, all)).collect(),
            RefOr::T(Schema::Object(o)) => o.properties.keys().cloned().collect(),
            RefOr::T(other) => panic!("unexpected schema {}", serde_json::to_string(other).unwrap_or_default()),
        }
    }

    /// The schema's property names and the serialised value's keys, sorted.
    pub(crate) fn fields<T: ToSchema + serde::Serialize>(value: &T) -> (Vec<String>, Vec<String>) {
        let mut all = Schemas::new();
        register::<T>(&mut all);
        let mut documented = properties(&T::schema(), &all);
        let mut serialised: Vec<String> =
            serde_json::to_value(value).unwrap().as_object().unwrap().keys().cloned().collect();
        documented.sort();
        serialised.sort();
        (documented, serialised)
    }

    #[test]
    fn the_schemas_name_exactly_the_serialised_fields() {
        let bbox = BBox { x: 1.0, y: 2.0, width: 3.0, height: 4.0 };
        let detection = Detection { bbox, landmarks: [[0.0; 2]; 5], score: 0.9 };
        let quality = Quality { face_size: 3.0, eye_distance: 1.0, sharpness: 100.0 };
        let face = Face { detection: detection.clone(), quality, embedding: None };
        let embedded = EmbeddedFace { face: face.clone(), embedding: vec![1.0], model: "m".into() };
        let at = String::from("2026-12-01T00:00:00Z");
        let person = Person {
            id: "p".into(),
            name: "n".into(),
            metadata: Some(serde_json::json!({})),
            created_at: at.clone(),
            updated_at: at.clone(),
            face_count: 1,
        };
        let record = FaceRecord {
            id: "f".into(),
            person_id: Some("p".into()),
            external_id: Some("e".into()),
            cluster_id: None,
            bbox,
            landmarks: [[0.0; 2]; 5],
            score: 0.9,
            quality,
            model: "m".into(),
            created_at: at.clone(),
        };
        let key = ApiKey {
            id: "k".into(),
            name: "n".into(),
            scope: Scope::Admin,
            created_at: at.clone(),
            revoked_at: Some(at.clone()),
        };
        let audit = AuditEntry { seq: 1, at, actor: "a".into(), action: "b".into(), subject: "c".into() };
        for (name, (documented, serialised)) in [
            ("BBox", fields(&bbox)),
            ("Detection", fields(&detection)),
            ("Quality", fields(&quality)),
            ("Face", fields(&face)),
            ("EmbeddedFace", fields(&embedded)),
            ("Person", fields(&person)),
            ("FaceRecord", fields(&record)),
            ("ApiKey", fields(&key)),
            ("AuditEntry", fields(&audit)),
        ] {
            assert_eq!(documented, serialised, "{name}");
        }
        let RefOr::T(Schema::Object(scope)) = Scope::schema() else { panic!("Scope is not a string enum") };
        let documented: Vec<String> =
            scope.enum_values.unwrap_or_default().iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect();
        let serialised: Vec<String> = Scope::ALL.iter().map(|s| s.as_str().to_string()).collect();
        assert_eq!(documented, serialised);
    }
}
