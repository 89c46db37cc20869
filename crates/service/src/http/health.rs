//! Liveness, readiness and service information.
use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::ApiError;
use super::AppState;
use crate::service::error::Error;
use crate::service::{GalleryInfo, ThresholdRule};

#[derive(Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `ok` (healthz) or `ready` (readyz).
    status: &'static str,
}

/// The process is alive and the runtime answers (never needs a key).
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "service",
    responses((status = 200, description = "Status", body = Status, example = json!({"status": "ok"}))))]
pub async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// Models loaded (a warm-up pass ran at start-up), workers alive, database answering (never needs a key).
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "service",
    responses((status = 200, description = "Status", body = Status, example = json!({"status": "ready"}))))]
pub async fn readyz(State(s): State<AppState>) -> Result<Json<Status>, ApiError> {
    match s.service.ready().await {
        Ok(()) => Ok(Json(Status { status: "ready" })),
        Err(reason) => Err(Error::Unavailable(format!("not ready: {reason}")).into()),
    }
}

/// An f32 as the JSON number it reads as (0.363, not 0.3630000054836273).
fn num(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

fn thresholds(svc: &crate::service::Service) -> ThresholdsInfo {
    let faces = svc.gallery_info().faces;
    let (verify, identify) = (svc.verify_threshold(), svc.identify_threshold(faces));
    let cal = svc.calibrated();
    let e = &cal.estimate;
    let c = &svc.config;
    ThresholdsInfo {
        verify: num(verify),
        verify_rule: c.verify,
        verify_source: c.verify.source(),
        verify_expected_far: e.far(f64::from(verify)),
        verify_expected_frr: e.frr(f64::from(verify)),
        identify: num(identify),
        identify_rule: c.identify,
        identify_source: c.identify.source(),
        identify_gallery_faces: faces,
        identify_expected_fpir: e.fpir(f64::from(identify), faces),
        identify_expected_fnir: e.frr(f64::from(identify)),
        ambiguity_margin: num(svc.identify_margin()),
        reference: c.reference.as_ref().map(|r| r.source.clone()),
        metric: "cosine similarity; match when similarity >= threshold",
    }
}

/// What the service runs and its limits.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Info {
    name: &'static str,
    version: &'static str,
    models: ModelsInfo,
    thresholds: ThresholdsInfo,
    gallery: GalleryInfo,
    enrollment: EnrollmentInfo,
    detector: DetectorInfo,
    limits: LimitsInfo,
    inference: InferenceInfo,
    uptime_seconds: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ModelsInfo {
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

#[derive(Serialize, utoipa::ToSchema)]
pub struct EmbedderInfo {
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
    evaluation: Option<visage_model::manifest::Evaluation>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MemberInfo {
    model: String,
    weight: f64,
}

fn embedders(p: &crate::vision::Pipeline) -> Vec<EmbedderInfo> {
    let active = p.embedder.id().to_string();
    p.manifest
        .embedders()
        .into_iter()
        .map(|plan| EmbedderInfo {
            name: plan
                .members
                .first()
                .filter(|_| plan.members.len() == 1)
                .and_then(|m| m.0.alias.clone())
                .unwrap_or_else(|| plan.name.clone()),
            active: visage_model::embedder_id(&plan).to_string() == active,
            members: plan.members.iter().map(|(e, w)| MemberInfo { model: e.id.clone(), weight: num(*w) }).collect(),
            threshold: plan.threshold.map(num),
            identify_threshold: plan.identify_threshold.map(num),
            evaluation: plan.evaluation.cloned(),
        })
        .collect()
}

/// The thresholds in force, how each is set and the error rates expected there.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ThresholdsInfo {
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

#[derive(Serialize, utoipa::ToSchema)]
pub struct EnrollmentInfo {
    /// Smallest face box side accepted, in pixels.
    min_face_size: f64,
    /// Smallest sharpness accepted (Laplacian variance).
    min_sharpness: f64,
    /// Whether each face's aligned crop is kept (`--keep-crops`).
    keep_crops: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DetectorInfo {
    /// Minimum score of every face but a photo's best one.
    score_threshold: f64,
    /// Minimum score of a photo's best face.
    best_score_threshold: f64,
    nms_threshold: f64,
    /// Longest side the detector sees; larger photos are scaled down for detection.
    max_side: u32,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LimitsInfo {
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

#[derive(Serialize, utoipa::ToSchema)]
pub struct InferenceInfo {
    workers: usize,
    queue_capacity: usize,
    queued: usize,
    running: usize,
    flip_augmentation: bool,
}

/// Version, models, thresholds and where they come from, gallery, limits, queue.
#[utoipa::path(get, path = "/info", operation_id = "info", tag = "service",
    responses((status = 200, description = "Service information", body = Info)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("match"))))]
pub async fn info(State(s): State<AppState>) -> Json<Info> {
    let svc = &s.service;
    let p = svc.engine().pipeline();
    let c = &svc.config;
    let d = &p.config.detector;
    Json(Info {
        name: "visage",
        version: env!("CARGO_PKG_VERSION"),
        models: ModelsInfo {
            detector: p.detector.id().to_string(),
            embedder: p.embedder.id().to_string(),
            embedding_dim: p.embedder.dim(),
            backend: p.embedder.backend().name().to_string(),
            embedders: embedders(p),
        },
        thresholds: thresholds(svc),
        gallery: svc.gallery_info(),
        enrollment: EnrollmentInfo {
            min_face_size: num(c.min_face_size),
            min_sharpness: num(c.min_sharpness),
            keep_crops: c.keep_crops,
        },
        detector: DetectorInfo {
            score_threshold: num(d.score_threshold),
            best_score_threshold: num(d.best_score_threshold),
            nms_threshold: num(d.nms_threshold),
            max_side: d.max_side,
        },
        limits: LimitsInfo {
            body_bytes: s.body_limit,
            request_timeout_seconds: s.request_timeout.as_secs_f64(),
            header_read_timeout_seconds: s.header_read_timeout.as_secs_f64(),
            max_multipart_parts: super::input::MAX_PARTS,
            base64_text_bytes: s.body_limit,
            max_pixels: p.config.decode.max_pixels,
            max_dimension: p.config.decode.max_dimension,
            max_faces: c.max_faces,
            max_top_k: c.max_top_k,
        },
        inference: InferenceInfo {
            workers: svc.engine().workers(),
            queue_capacity: svc.engine().queue_capacity(),
            queued: svc.engine().queued(),
            running: svc.engine().running(),
            flip_augmentation: p.config.flip,
        },
        uptime_seconds: svc.started.elapsed().as_secs(),
    })
}
