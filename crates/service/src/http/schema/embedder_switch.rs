//! The OpenAPI schemas of `/v1/gallery/models`, from mirror structs of the
//! same serde form.
#![allow(dead_code)]
use std::collections::BTreeMap;

use utoipa::ToSchema;

use crate::domain::Switched;
use crate::service::embedder_switch::{
    AnswerView, ChangedAnswer, GalleryModels, ModelAnswers, ModelChanges, ModelFaces,
};

/// The models the faces have embeddings of.
#[derive(ToSchema)]
struct GalleryModelsDoc {
    /// The model this service embeds and compares with.
    serving: String,
    faces: u64,
    /// Faces this service cannot compare: no embedding of its model.
    faces_without_serving_model: u64,
    models: Vec<ModelFaces>,
}
documented_as!(GalleryModels, GalleryModelsDoc, "GalleryModels");

#[derive(ToSchema)]
struct ModelFacesDoc {
    model: String,
    /// The manifest's name for it, when it is one of its embedders.
    embedder: Option<String>,
    /// Faces whose own embedding is of this model.
    own: u64,
    /// Faces with an embedding of this model kept beside their own.
    beside: u64,
}
documented_as!(ModelFaces, ModelFacesDoc, "ModelFaces");

/// What identify would answer differently with `to` than with `from`, each
/// face of the gallery the probe and the others the gallery.
#[derive(ToSchema)]
struct ModelChangesDoc {
    from: ModelAnswers,
    to: ModelAnswers,
    /// Faces with embeddings of both models (the report's gallery).
    faces: usize,
    /// Faces without an embedding of one of them (left out).
    faces_left_out: u64,
    probes: usize,
    /// Whether every face was a probe (else an even spread of them).
    complete: bool,
    unchanged: usize,
    changed: usize,
    /// Changed answers by kind, e.g. `identified -> unknown`, `identified -> another person`.
    by_kind: BTreeMap<String, usize>,
    /// The first 100 changed answers, with ids.
    examples: Vec<ChangedAnswer>,
}
documented_as!(ModelChanges, ModelChangesDoc, "ModelChanges");

/// One model's leave-one-out answers.
#[derive(ToSchema)]
struct ModelAnswersDoc {
    model: String,
    embedder: Option<String>,
    identify_threshold: f32,
    ambiguity_margin: f32,
    /// Probes whose person has other faces in the gallery...
    with_other_faces: usize,
    /// ... named as their own person,
    right: usize,
    /// ... named as someone else,
    wrong: usize,
    /// ... unknown,
    unknown: usize,
    /// ... ambiguous.
    ambiguous: usize,
    /// Probes whose person has no other face (strangers to the rest)...
    alone: usize,
    /// ... named as someone (false positive identifications),
    alone_named: usize,
    /// ... ambiguous.
    alone_ambiguous: usize,
}
documented_as!(ModelAnswers, ModelAnswersDoc, "ModelAnswers");

#[derive(ToSchema)]
struct ChangedAnswerDoc {
    face_id: String,
    person_id: String,
    name: String,
    before: AnswerView,
    after: AnswerView,
}
documented_as!(ChangedAnswer, ChangedAnswerDoc, "ChangedAnswer");

#[derive(ToSchema)]
struct AnswerViewDoc {
    /// `identified`, `unknown` or `ambiguous`.
    status: String,
    /// Who was named.
    person_id: Option<String>,
}
documented_as!(AnswerView, AnswerViewDoc, "AnswerView");

/// What a switch of the faces' own model did.
#[derive(ToSchema)]
struct SwitchedDoc {
    /// Faces whose own embedding is now the model's (the previous kept beside).
    switched: u64,
    /// Faces without an embedding of the model (left on theirs, with `force`).
    lacking: u64,
    /// Always true in a 200 answer (a refusal is a 409).
    done: bool,
}
documented_as!(Switched, SwitchedDoc, "Switched");

#[cfg(test)]
mod tests {
    use super::super::tests::fields;
    use super::*;

    #[test]
    fn the_schemas_name_exactly_the_serialised_fields() {
        let answers = ModelAnswers::default();
        let view = AnswerView { status: "identified", person_id: Some("p".into()) };
        let changed = ChangedAnswer {
            face_id: "f".into(),
            person_id: "p".into(),
            name: "n".into(),
            before: view.clone(),
            after: view.clone(),
        };
        let faces = ModelFaces { model: "m".into(), embedder: None, own: 1, beside: 0 };
        let models = GalleryModels {
            serving: "m".into(),
            faces: 1,
            faces_without_serving_model: 0,
            models: vec![faces.clone()],
        };
        let changes = ModelChanges {
            from: answers.clone(),
            to: answers.clone(),
            faces: 1,
            faces_left_out: 0,
            probes: 1,
            complete: true,
            unchanged: 0,
            changed: 1,
            by_kind: BTreeMap::new(),
            examples: vec![changed.clone()],
        };
        let switched = Switched { switched: 1, lacking: 0, done: true };
        for (name, (documented, serialised)) in [
            ("GalleryModels", fields(&models)),
            ("ModelFaces", fields(&faces)),
            ("ModelChanges", fields(&changes)),
            ("ModelAnswers", fields(&answers)),
            ("ChangedAnswer", fields(&changed)),
            ("AnswerView", fields(&view)),
            ("Switched", fields(&switched)),
        ] {
            assert_eq!(documented, serialised, "{name}");
        }
    }
}
