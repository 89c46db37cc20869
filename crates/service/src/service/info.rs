//! `GET /v1/info`: what the service runs and its limits, and the thresholds
//! in force with the error rates expected there (the one summary that
//! `/v1/info` and the calibration report both read); the gauges `/metrics`
//! reads.
use serde::Serialize;

use super::{GalleryInfo, Service, ThresholdRule};

/// An f32 as the JSON number it reads as (0.363, not 0.3630000054836273).
fn num(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// The limits only the transport knows (the HTTP layer passes them in).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RequestLimits {
    pub body_bytes: usize,
    pub request_timeout_seconds: f64,
    pub header_read_timeout_seconds: f64,
    pub max_multipart_parts: usize,
    /// Base64 images arrive in JSON bodies, so the body limit bounds them.
    pub base64_text_bytes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Info {
    pub name: &'static str,
    pub version: &'static str,
    pub models: ModelsInfo,
    pub thresholds: ThresholdsInForce,
    pub gallery: GalleryInfo,
    pub enrollment: EnrollmentInfo,
    pub detector: DetectorInfo,
    pub limits: LimitsInfo,
    pub inference: InferenceInfo,
    pub uptime_seconds: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelsInfo {
    pub detector: String,
    pub embedder: String,
    pub embedding_dim: usize,
    pub backend: String,
    pub embedders: Vec<EmbedderInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EmbedderInfo {
    pub name: String,
    pub active: bool,
    pub members: Vec<MemberInfo>,
    pub threshold: Option<f64>,
    pub identify_threshold: Option<f64>,
    pub evaluation: Option<visage_model::manifest::Evaluation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberInfo {
    pub model: String,
    pub weight: f64,
}

/// The thresholds in force, how each is set and the error rates expected there.
#[derive(Debug, Clone, Serialize)]
pub struct ThresholdsInForce {
    pub verify: f32,
    pub verify_rule: ThresholdRule,
    pub verify_source: &'static str,
    pub verify_expected_far: Option<f64>,
    pub verify_expected_frr: Option<f64>,
    pub identify: f32,
    pub identify_rule: ThresholdRule,
    pub identify_source: &'static str,
    pub identify_gallery_faces: usize,
    pub identify_expected_fpir: Option<f64>,
    pub identify_expected_fnir: Option<f64>,
    pub ambiguity_margin: f32,
    pub reference: Option<String>,
    pub metric: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnrollmentInfo {
    pub min_face_size: f64,
    pub min_sharpness: f64,
    pub keep_crops: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DetectorInfo {
    pub score_threshold: f64,
    pub best_score_threshold: f64,
    pub nms_threshold: f64,
    pub max_side: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct LimitsInfo {
    #[serde(flatten)]
    pub request: RequestLimits,
    pub max_pixels: u64,
    pub max_dimension: u32,
    pub max_faces: usize,
    pub max_top_k: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct InferenceInfo {
    pub workers: usize,
    pub queue_capacity: usize,
    pub queued: usize,
    pub running: usize,
    pub flip_augmentation: bool,
}

impl Service {
    /// Version, models, thresholds and where they come from, gallery, limits, queue.
    pub fn info(&self, request: RequestLimits) -> Info {
        let p = self.engine.pipeline();
        let (c, d) = (&self.config, &p.config.detector);
        Info {
            name: "visage",
            version: env!("CARGO_PKG_VERSION"),
            models: ModelsInfo {
                detector: p.detector.id().to_string(),
                embedder: p.embedder.id().to_string(),
                embedding_dim: p.embedder.dim(),
                backend: p.embedder.backend().name().to_string(),
                embedders: self.embedders_offered(),
            },
            thresholds: self.thresholds_in_force(self.gallery_info().faces),
            gallery: self.gallery_info(),
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
                request,
                max_pixels: p.config.decode.max_pixels,
                max_dimension: p.config.decode.max_dimension,
                max_faces: c.max_faces,
                max_top_k: c.max_top_k,
            },
            inference: InferenceInfo {
                workers: self.engine.workers(),
                queue_capacity: self.engine.queue_capacity(),
                queued: self.engine.queued(),
                running: self.engine.running(),
                flip_augmentation: p.config.flip,
            },
            uptime_seconds: self.started.elapsed().as_secs(),
        }
    }

    /// The thresholds in force for a gallery of `faces`, their rules and
    /// the error rates the current estimate expects there.
    pub fn thresholds_in_force(&self, faces: usize) -> ThresholdsInForce {
        let (verify, identify) = (self.verify_threshold(), self.identify_threshold(faces));
        let cal = self.calibrated();
        let e = &cal.estimate;
        let c = &self.config;
        ThresholdsInForce {
            verify,
            verify_rule: c.verify,
            verify_source: c.verify.source(),
            verify_expected_far: e.far(f64::from(verify)),
            verify_expected_frr: e.frr(f64::from(verify)),
            identify,
            identify_rule: c.identify,
            identify_source: c.identify.source(),
            identify_gallery_faces: faces,
            identify_expected_fpir: e.fpir(f64::from(identify), faces),
            identify_expected_fnir: e.frr(f64::from(identify)),
            ambiguity_margin: self.identify_margin(),
            reference: c.reference.as_ref().map(|r| r.source.clone()),
            metric: "cosine similarity; match when similarity >= threshold",
        }
    }

    /// Every embedder of the loaded manifest; the one in use is `active`.
    fn embedders_offered(&self) -> Vec<EmbedderInfo> {
        let p = self.engine.pipeline();
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
                members: plan
                    .members
                    .iter()
                    .map(|(e, w)| MemberInfo { model: e.id.clone(), weight: num(*w) })
                    .collect(),
                threshold: plan.threshold.map(num),
                identify_threshold: plan.identify_threshold.map(num),
                evaluation: plan.evaluation.cloned(),
            })
            .collect()
    }

    /// The gauges `/metrics` reads at each scrape: queue, gallery, database.
    pub fn metrics_snapshot(&self) -> crate::telemetry::Snapshot {
        let gallery = self.gallery_info();
        crate::telemetry::Snapshot {
            queue_depth: self.engine.queued(),
            running: self.engine.running(),
            queue_capacity: self.engine.queue_capacity(),
            gallery_faces: gallery.faces,
            gallery_persons: gallery.persons,
            gallery_other_model: gallery.faces_other_model,
            database_up: self.database_up(),
        }
    }
}
