//! The OpenAPI schemas of `GET /v1/info`, from mirror structs of the same
//! serde form (the service layer knows nothing of OpenAPI).
#![allow(dead_code)]
use utoipa::ToSchema;

use crate::service::info::{
    DetectorInfo, EmbedderInfo, EnrollmentInfo, InferenceInfo, Info, LimitsInfo, MemberInfo, ModelsInfo,
    ThresholdsInForce,
};
use crate::service::{GalleryInfo, ThresholdRule};

/// What the service runs and its limits.
#[derive(ToSchema)]
struct InfoDoc {
    name: &'static str,
    version: &'static str,
    models: ModelsInfo,
    thresholds: ThresholdsInForce,
    gallery: GalleryInfo,
    enrollment: EnrollmentInfo,
    detector: DetectorInfo,
    limits: LimitsInfo,
    inference: InferenceInfo,
    uptime_seconds: u64,
}

#[derive(ToSchema)]
struct ModelsInfoDoc {
    /// Manifest id and SHA-256 of the detector.
    detector: String,
    /// Manifest id and SHA-256 of the embedder; stored embeddings carry it.
    embedder: String,
    embedding_dim: usize,
    /// `tract` or `onnxruntime`.
    backend: String,
    /// Every embedder this installation offers (`--embedder`), with its
    /// measured accuracy and cost; the one in use has `active: true`.
    embedders: Vec<EmbedderInfo>,
}

#[derive(ToSchema)]
struct EmbedderInfoDoc {
    /// The name `--embedder` takes.
    name: String,
    active: bool,
    /// Its models and their shares of the similarity.
    members: Vec<MemberInfo>,
    /// Default thresholds (1:1 and 1:N).
    threshold: Option<f64>,
    identify_threshold: Option<f64>,
    /// Measured on LFW View 1 (DevTest) through this pipeline; cost per face on one core.
    #[schema(value_type = Option<Object>)]
    evaluation: Option<serde_json::Value>,
}

#[derive(ToSchema)]
struct MemberInfoDoc {
    model: String,
    weight: f64,
}

/// The thresholds in force, how each is set and the error rates expected there.
#[derive(ToSchema)]
struct ThresholdsInfoDoc {
    verify: f64,
    /// `{"embedder_default": t}`, `{"fixed": t}` or `{"far": target}`.
    #[schema(value_type = Object)]
    verify_rule: ThresholdRule,
    verify_source: &'static str,
    /// Expected false-accept rate at the 1:1 threshold (null: no reference scores).
    verify_expected_far: Option<f64>,
    /// Expected false-reject rate at the 1:1 threshold.
    verify_expected_frr: Option<f64>,
    identify: f64,
    /// `{"embedder_default": t}`, `{"fixed": t}` or `{"fpir": target}`.
    #[schema(value_type = Object)]
    identify_rule: ThresholdRule,
    identify_source: &'static str,
    /// The gallery size (faces) the 1:N threshold and its expected FPIR are for.
    identify_gallery_faces: usize,
    /// Expected false-positive identification rate at the 1:N threshold.
    identify_expected_fpir: Option<f64>,
    /// Expected share of enrolled persons not found at the 1:N threshold.
    identify_expected_fnir: Option<f64>,
    /// How far the best of two persons above the 1:N threshold must lead the second (else "ambiguous").
    ambiguity_margin: f64,
    /// The reference scores the estimates come from (null: none for this embedder).
    reference: Option<String>,
    metric: &'static str,
}

#[derive(ToSchema)]
struct EnrollmentInfoDoc {
    /// Smallest face box side accepted, in pixels.
    min_face_size: f64,
    /// Smallest sharpness accepted (Laplacian variance).
    min_sharpness: f64,
    /// Whether each face's aligned crop is kept (`--keep-crops`).
    keep_crops: bool,
}

#[derive(ToSchema)]
struct DetectorInfoDoc {
    /// Minimum score of every face but a photo's best one.
    score_threshold: f64,
    /// Minimum score of a photo's best face.
    best_score_threshold: f64,
    nms_threshold: f64,
    /// Longest side the detector sees; larger photos are scaled down for detection.
    max_side: u32,
}

#[derive(ToSchema)]
struct LimitsInfoDoc {
    body_bytes: usize,
    request_timeout_seconds: f64,
    header_read_timeout_seconds: f64,
    max_multipart_parts: usize,
    /// Base64 images arrive in JSON bodies, so the body limit bounds them.
    base64_text_bytes: usize,
    max_pixels: u64,
    max_dimension: u32,
    max_faces: usize,
    max_top_k: usize,
}

#[derive(ToSchema)]
struct InferenceInfoDoc {
    workers: usize,
    queue_capacity: usize,
    queued: usize,
    running: usize,
    flip_augmentation: bool,
}

documented_as!(Info, InfoDoc, "Info");
documented_as!(ModelsInfo, ModelsInfoDoc, "ModelsInfo");
documented_as!(EmbedderInfo, EmbedderInfoDoc, "EmbedderInfo");
documented_as!(MemberInfo, MemberInfoDoc, "MemberInfo");
documented_as!(ThresholdsInForce, ThresholdsInfoDoc, "ThresholdsInfo");
documented_as!(EnrollmentInfo, EnrollmentInfoDoc, "EnrollmentInfo");
documented_as!(DetectorInfo, DetectorInfoDoc, "DetectorInfo");
documented_as!(LimitsInfo, LimitsInfoDoc, "LimitsInfo");
documented_as!(InferenceInfo, InferenceInfoDoc, "InferenceInfo");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::info::RequestLimits;

    #[test]
    fn the_info_schemas_name_exactly_the_serialised_fields() {
        use super::super::tests::fields;
        let rule = ThresholdRule::Fixed(0.5);
        let member = MemberInfo { model: "m".into(), weight: 1.0 };
        let embedder = EmbedderInfo {
            name: "e".into(),
            active: true,
            members: vec![member.clone()],
            threshold: Some(0.3),
            identify_threshold: None,
            evaluation: None,
        };
        let models = ModelsInfo {
            detector: "d".into(),
            embedder: "e".into(),
            embedding_dim: 2,
            backend: "tract".into(),
            embedders: vec![embedder.clone()],
        };
        let thresholds = ThresholdsInForce {
            verify: 0.3,
            verify_rule: rule,
            verify_source: "s",
            verify_expected_far: None,
            verify_expected_frr: None,
            identify: 0.5,
            identify_rule: rule,
            identify_source: "s",
            identify_gallery_faces: 1,
            identify_expected_fpir: None,
            identify_expected_fnir: None,
            ambiguity_margin: 0.0,
            reference: None,
            metric: "m",
        };
        let request = RequestLimits {
            body_bytes: 1,
            request_timeout_seconds: 1.0,
            header_read_timeout_seconds: 1.0,
            max_multipart_parts: 1,
            base64_text_bytes: 1,
        };
        let limits = LimitsInfo { request, max_pixels: 1, max_dimension: 1, max_faces: 1, max_top_k: 1 };
        let enrollment = EnrollmentInfo { min_face_size: 1.0, min_sharpness: 1.0, keep_crops: false };
        let detector =
            DetectorInfo { score_threshold: 0.5, best_score_threshold: 0.5, nms_threshold: 0.3, max_side: 1 };
        let inference =
            InferenceInfo { workers: 1, queue_capacity: 1, queued: 0, running: 0, flip_augmentation: false };
        let gallery = GalleryInfo { faces: 1, persons: 1, faces_other_model: 0, index: "exact", index_reopened: false };
        let info = Info {
            name: "visage",
            version: "0",
            models: models.clone(),
            thresholds: thresholds.clone(),
            gallery,
            enrollment: enrollment.clone(),
            detector: detector.clone(),
            limits: limits.clone(),
            inference: inference.clone(),
            uptime_seconds: 1,
        };
        for (name, (documented, serialised)) in [
            ("Info", fields(&info)),
            ("ModelsInfo", fields(&models)),
            ("EmbedderInfo", fields(&embedder)),
            ("MemberInfo", fields(&member)),
            ("ThresholdsInfo", fields(&thresholds)),
            ("EnrollmentInfo", fields(&enrollment)),
            ("DetectorInfo", fields(&detector)),
            ("LimitsInfo", fields(&limits)),
            ("InferenceInfo", fields(&inference)),
        ] {
            assert_eq!(documented, serialised, "{name}");
        }
    }
}
