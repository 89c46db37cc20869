//! Liveness, readiness and service information.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use crate::error::Error;

/// The process is alive and the runtime answers.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Models loaded (a warm-up pass ran at start-up), workers alive, database answering.
pub async fn readyz(State(s): State<AppState>) -> Result<Json<Value>, Error> {
    match s.service.ready().await {
        Ok(()) => Ok(Json(json!({ "status": "ready" }))),
        Err(reason) => Err(Error::Unavailable(format!("not ready: {reason}"))),
    }
}

/// An f32 as the JSON number it reads as (0.363, not 0.3630000054836273).
fn num(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

pub async fn info(State(s): State<AppState>) -> (StatusCode, Json<Value>) {
    let svc = &s.service;
    let p = svc.engine().pipeline();
    let c = &svc.config;
    let d = &p.config.detector;
    (
        StatusCode::OK,
        Json(json!({
            "name": "visage",
            "version": env!("CARGO_PKG_VERSION"),
            "models": {
                "detector": p.detector.id().to_string(),
                "embedder": p.embedder.id().to_string(),
                "embedding_dim": p.embedder.dim(),
                "backend": p.embedder.backend(),
            },
            "thresholds": {
                "verify": num(c.verify_threshold),
                "verify_source": "SFace's published operating point (OpenCV FaceRecognizerSF, cosine 0.363)",
                "identify": num(c.identify_threshold),
                "identify_source": "stricter 1:N default calibrated on a development set (see README: Thresholds)",
                "metric": "cosine similarity; match when similarity >= threshold",
            },
            "gallery": svc.gallery_info(),
            "enrollment": {
                "min_face_size": num(c.min_face_size),
                "min_sharpness": num(c.min_sharpness),
            },
            "detector": {
                "score_threshold": num(d.score_threshold),
                "nms_threshold": num(d.nms_threshold),
                "max_side": d.max_side,
            },
            "limits": {
                "body_bytes": s.body_limit,
                "request_timeout_seconds": s.request_timeout.as_secs_f64(),
                "header_read_timeout_seconds": s.header_read_timeout.as_secs_f64(),
                "max_multipart_parts": super::input::MAX_PARTS,
                // Base64 images arrive in JSON bodies, so the body limit bounds them.
                "base64_text_bytes": s.body_limit,
                "max_pixels": p.config.decode.max_pixels,
                "max_dimension": p.config.decode.max_dimension,
                "max_faces": c.max_faces,
                "max_top_k": c.max_top_k,
            },
            "inference": {
                "workers": svc.engine().workers(),
                "queue_capacity": svc.engine().queue_capacity(),
                "queued": svc.engine().queued(),
                "running": svc.engine().running(),
                "flip_augmentation": p.config.flip,
            },
            "uptime_seconds": svc.started.elapsed().as_secs(),
        })),
    )
}
