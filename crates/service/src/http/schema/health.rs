//! The OpenAPI schemas of `GET /v1/gallery/health`, from mirror structs of
//! the same serde form.
#![allow(dead_code)]
use utoipa::ToSchema;

use crate::service::health::{Counts, DisagreeingFace, GalleryHealth, LookAlikes, LowQuality, OtherModel};

/// Problems in the enrolled gallery, each with the ids needed to act on it.
#[derive(ToSchema)]
struct GalleryHealthDoc {
    model: String,
    faces: usize,
    persons: usize,
    /// Two faces of one person below this (the 1:1 threshold in force) disagree.
    disagree_below: f32,
    /// Two persons at or above this (the 1:N threshold in force) look alike.
    look_alike_from: f32,
    /// Faces searched for look-alikes.
    look_alike_probes: usize,
    /// Whether every face was searched (false on a large gallery: an even spread was).
    complete: bool,
    counts: Counts,
    /// Faces no other face of their person matches (likely mislabelled), worst first; at most 1,000.
    disagreeing_faces: Vec<DisagreeingFace>,
    /// Pairs of persons at or above the 1:N threshold (one person enrolled twice, or twins), closest first.
    look_alikes: Vec<LookAlikes>,
    /// Enrollments today's gates would refuse.
    low_quality: Vec<LowQuality>,
    /// Faces with no embedding by this service's model (never compared until re-embedded).
    other_model: Vec<OtherModel>,
}
documented_as!(GalleryHealth, GalleryHealthDoc, "GalleryHealth");

/// How many findings of each kind (the lists stop at 1,000).
#[derive(ToSchema)]
struct CountsDoc {
    disagreeing_faces: usize,
    look_alikes: usize,
    low_quality: usize,
    other_model: usize,
}
documented_as!(Counts, CountsDoc, "HealthCounts");

#[derive(ToSchema)]
struct DisagreeingFaceDoc {
    person_id: String,
    name: String,
    face_id: String,
    /// Its highest similarity to the person's other faces.
    best_own_similarity: f32,
    own_faces: usize,
}
documented_as!(DisagreeingFace, DisagreeingFaceDoc, "DisagreeingFace");

#[derive(ToSchema)]
struct LookAlikesDoc {
    person_ids: [String; 2],
    names: [String; 2],
    /// The closest face of each.
    face_ids: [String; 2],
    similarity: f32,
}
documented_as!(LookAlikes, LookAlikesDoc, "LookAlikes");

#[derive(ToSchema)]
struct LowQualityDoc {
    person_id: String,
    name: String,
    face_id: String,
    /// `face_too_small`, `face_too_blurry`, `low_detection_score`.
    reasons: Vec<String>,
    face_size: f32,
    sharpness: f32,
    detection_score: f32,
}
documented_as!(LowQuality, LowQualityDoc, "LowQuality");

#[derive(ToSchema)]
struct OtherModelDoc {
    person_id: String,
    name: String,
    face_id: String,
    model: String,
}
documented_as!(OtherModel, OtherModelDoc, "OtherModelFace");
