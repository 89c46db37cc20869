//! The OpenAPI schemas of the service's answers (verify, identify, compare,
//! detect, the gallery's description), derived from mirror structs of the
//! same serde form so that the service layer knows nothing of OpenAPI.
#![allow(dead_code)]
use utoipa::ToSchema;

use crate::service::{
    Analysis, Comparison, DecisionRule, GalleryInfo, Identification, IdentifiedFace, IdentifiedPerson, IdentifyStatus,
    ImageSize, Verification,
};
use crate::vision::Face;

#[derive(ToSchema)]
struct VerificationDoc {
    #[schema(rename = "match")]
    is_match: bool,
    similarity: f32,
    threshold: f32,
    /// The share of other persons' faces expected to score this similarity
    /// or more (null: the embedder ships no reference scores).
    estimated_far: Option<f64>,
    person_id: String,
    /// The enrolled face that matched best.
    best_face_id: String,
    /// How many enrolled faces were compared.
    compared_faces: usize,
    decision: DecisionRule,
    /// The probe face used.
    face: Face,
}
documented_as!(Verification, VerificationDoc, "Verification");

#[derive(ToSchema)]
struct IdentifiedPersonDoc {
    person_id: String,
    name: String,
    similarity: f32,
    face_id: String,
}
documented_as!(IdentifiedPerson, IdentifiedPersonDoc, "IdentifiedPerson");

#[derive(ToSchema)]
struct IdentifiedFaceDoc {
    face: Face,
    /// The person this face is, or null when no one clears the threshold.
    #[schema(rename = "match")]
    matched: Option<IdentifiedPerson>,
    status: IdentifyStatus,
    /// The most similar enrolled persons, best first (whether or not they match).
    candidates: Vec<IdentifiedPerson>,
    /// The chance that a stranger's face scores the best candidate's
    /// similarity or more against a gallery this size (null: no candidate,
    /// or no reference scores).
    estimated_fpir: Option<f64>,
    /// With `remember=unknown`: the id this face was kept under as
    /// unassigned (null when it was named, or below the enrollment gates).
    remembered_face_id: Option<String>,
}
documented_as!(IdentifiedFace, IdentifiedFaceDoc, "IdentifiedFace");

#[derive(ToSchema)]
struct IdentificationDoc {
    threshold: f32,
    /// How far the best person must lead the second when both clear the
    /// threshold; closer than this the face is "ambiguous".
    ambiguity_margin: f32,
    gallery_size: usize,
    faces: Vec<IdentifiedFace>,
}
documented_as!(Identification, IdentificationDoc, "Identification");

#[derive(ToSchema)]
struct ComparisonDoc {
    #[schema(rename = "match")]
    is_match: bool,
    similarity: f32,
    threshold: f32,
    /// The share of different persons' pairs expected to score this similarity or more.
    estimated_far: Option<f64>,
    face_a: Face,
    face_b: Face,
    model: String,
}
documented_as!(Comparison, ComparisonDoc, "Comparison");

/// Whether identify put a face to a name.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
enum IdentifyStatusDoc {
    /// An enrolled person clears the threshold (`match` names them).
    Identified,
    /// No one does (`match` is null).
    Unknown,
    /// Two or more persons clear the threshold and the best does not lead by
    /// `ambiguity_margin` (`match` is null; `candidates` lists them).
    Ambiguous,
}
documented_as!(IdentifyStatus, IdentifyStatusDoc, "IdentifyStatus");

/// How verify decides, stated in every answer.
#[derive(ToSchema)]
enum DecisionRuleDoc {
    /// The person's most similar enrolled face against the threshold.
    #[schema(rename = "highest cosine similarity over the person's enrolled faces, compared with the threshold")]
    BestEnrolledFace,
}
documented_as!(DecisionRule, DecisionRuleDoc, "DecisionRule");

#[derive(ToSchema)]
struct ImageSizeDoc {
    width: u32,
    height: u32,
}
documented_as!(ImageSize, ImageSizeDoc, "ImageSize");

#[derive(ToSchema)]
struct AnalysisDoc {
    image: ImageSize,
    faces: Vec<Face>,
}
documented_as!(Analysis, AnalysisDoc, "Analysis");

#[derive(ToSchema)]
struct GalleryInfoDoc {
    faces: usize,
    persons: usize,
    /// Stored faces embedded by another model: never compared; re-enroll them.
    faces_other_model: usize,
    /// The 1:N index: "exact" (f32), "exact-i8" (i8 codes) or "ann"
    /// (usearch's graph over i8 codes); `--index auto` resolved.
    index: &'static str,
    /// Whether the graph was reopened from `--index-dir` (and caught up from
    /// the change log) when the gallery was last loaded, rather than built.
    index_reopened: bool,
}
documented_as!(GalleryInfo, GalleryInfoDoc, "GalleryInfo");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BBox, Detection, Quality};
    use crate::http::schema::tests::fields;
    use utoipa::PartialSchema;

    #[test]
    fn the_answers_schemas_name_exactly_the_serialised_fields() {
        let bbox = BBox { x: 1.0, y: 2.0, width: 3.0, height: 4.0 };
        let detection = Detection { bbox, landmarks: [[0.0; 2]; 5], score: 0.9 };
        let quality = Quality { face_size: 3.0, eye_distance: 1.0, sharpness: 100.0 };
        let face = Face { detection, quality, embedding: None };
        let person = IdentifiedPerson { person_id: "p".into(), name: "n".into(), similarity: 0.5, face_id: "f".into() };
        let identified = IdentifiedFace {
            face: face.clone(),
            matched: Some(person.clone()),
            status: IdentifyStatus::Identified,
            candidates: vec![person.clone()],
            estimated_fpir: Some(1e-3),
            remembered_face_id: None,
        };
        let verification = Verification {
            is_match: true,
            similarity: 0.5,
            threshold: 0.4,
            estimated_far: Some(1e-4),
            person_id: "p".into(),
            best_face_id: "f".into(),
            compared_faces: 1,
            decision: DecisionRule::BestEnrolledFace,
            face: face.clone(),
        };
        let comparison = Comparison {
            is_match: false,
            similarity: 0.1,
            threshold: 0.4,
            estimated_far: None,
            face_a: face.clone(),
            face_b: face.clone(),
            model: "m".into(),
        };
        let image = ImageSize { width: 1, height: 2 };
        let analysis = Analysis { image: image.clone(), faces: vec![face] };
        let gallery = GalleryInfo { faces: 1, persons: 1, faces_other_model: 0, index: "exact", index_reopened: false };
        let identification =
            Identification { threshold: 0.5, ambiguity_margin: 0.02, gallery_size: 1, faces: vec![identified.clone()] };
        for (name, (documented, serialised)) in [
            ("Verification", fields(&verification)),
            ("IdentifiedPerson", fields(&person)),
            ("IdentifiedFace", fields(&identified)),
            ("Identification", fields(&identification)),
            ("Comparison", fields(&comparison)),
            ("ImageSize", fields(&image)),
            ("Analysis", fields(&analysis)),
            ("GalleryInfo", fields(&gallery)),
        ] {
            assert_eq!(documented, serialised, "{name}");
        }
        for (value, schema) in [
            (serde_json::to_value(IdentifyStatus::Identified), IdentifyStatus::schema()),
            (serde_json::to_value(IdentifyStatus::Unknown), IdentifyStatus::schema()),
            (serde_json::to_value(IdentifyStatus::Ambiguous), IdentifyStatus::schema()),
            (serde_json::to_value(DecisionRule::BestEnrolledFace), DecisionRule::schema()),
        ] {
            let schema = serde_json::to_value(schema).unwrap();
            let values = schema["enum"].as_array().cloned().unwrap_or_default();
            assert!(values.contains(&value.unwrap()), "{schema}");
        }
    }
}
