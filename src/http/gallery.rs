//! `/v1/calibration`: what the thresholds in force are expected to cost,
//! measured on the gallery itself beside the embedder's reference.
use axum::Json;
use axum::extract::State;

use super::{ApiError, AppState};
use crate::service::CalibrationReport;

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
