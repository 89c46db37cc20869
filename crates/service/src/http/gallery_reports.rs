//! `/v1/calibration`: what the thresholds in force are expected to cost,
//! measured on the gallery itself beside the embedder's reference;
//! `/v1/gallery/health`: problems in the gallery to act on.
use axum::Json;
use axum::extract::State;

use super::{ApiError, AppState};
use crate::service::{CalibrationReport, GalleryHealth};

/// Error rates expected at the thresholds in force (from the embedder's
/// reference scores and the gallery's own same- and different-person
/// pairs), and the thresholds that meet common targets. Samples the gallery
/// afresh (about a second at a million faces).
#[utoipa::path(get, path = "/calibration", operation_id = "calibration", tag = "gallery",
    responses((status = 200, description = "The calibration report", body = CalibrationReport)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))))]
pub async fn calibration(State(s): State<AppState>) -> Result<Json<CalibrationReport>, ApiError> {
    Ok(Json(s.service.calibration_report().await?))
}

/// Faces that disagree with their own person (likely mislabelled), pairs of
/// persons closer than the 1:N threshold (one person enrolled twice, or
/// twins), enrollments today's gates would refuse, faces of another model;
/// each with the ids needed to act. On a large gallery an even spread of
/// faces is searched for look-alikes (`complete: false`; `visage gallery
/// doctor --all` searches every face).
#[utoipa::path(get, path = "/gallery/health", operation_id = "gallery_health", tag = "gallery",
    responses((status = 200, description = "The findings", body = GalleryHealth)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))))]
pub async fn health(State(s): State<AppState>) -> Result<Json<GalleryHealth>, ApiError> {
    Ok(Json(s.service.gallery_health(false).await?))
}
