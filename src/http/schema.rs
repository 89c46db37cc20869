//! The OpenAPI schemas of the pipeline's own answer types (`vision::Face`,
//! `vision::EmbeddedFace`), written here at the edge so that the pipeline
//! knows nothing of OpenAPI. Each mirrors the type's serde form, which the
//! tests below check against a serialised value.
use std::borrow::Cow;

use utoipa::openapi::schema::{AllOfBuilder, ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{KnownFormat, Ref, RefOr, SchemaFormat};
use utoipa::{PartialSchema, ToSchema};

use crate::domain::{Detection, Quality};
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
mod tests {
    use super::*;
    use crate::domain::BBox;

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

    #[test]
    fn the_schemas_name_exactly_the_serialised_fields() {
        let face = Face {
            detection: Detection {
                bbox: BBox { x: 1.0, y: 2.0, width: 3.0, height: 4.0 },
                landmarks: [[0.0; 2]; 5],
                score: 0.9,
            },
            quality: Quality { face_size: 3.0, eye_distance: 1.0, sharpness: 100.0 },
            embedding: None,
        };
        let embedded = EmbeddedFace { face: face.clone(), embedding: vec![1.0], model: "m".into() };
        let mut all = Schemas::new();
        register::<EmbeddedFace>(&mut all);
        for (schema, value) in [
            (Face::schema(), serde_json::to_value(&face).unwrap()),
            (EmbeddedFace::schema(), serde_json::to_value(&embedded).unwrap()),
        ] {
            let mut documented = properties(&schema, &all);
            let mut serialised: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
            documented.sort();
            serialised.sort();
            assert_eq!(documented, serialised);
        }
    }
}
