//! Liveness, readiness and service information.
use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::ApiError;
use super::AppState;
use crate::service::error::Error;
use crate::service::info::{Info, RequestLimits};

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

/// Version, models, thresholds and where they come from, gallery, limits, queue.
#[utoipa::path(get, path = "/info", operation_id = "info", tag = "service",
    responses((status = 200, description = "Service information", body = Info)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("match"))))]
pub async fn info(State(s): State<AppState>) -> Json<Info> {
    Json(s.service.info(RequestLimits {
        body_bytes: s.body_limit,
        request_timeout_seconds: s.request_timeout.as_secs_f64(),
        header_read_timeout_seconds: s.header_read_timeout.as_secs_f64(),
        max_multipart_parts: super::input::MAX_PARTS,
        base64_text_bytes: s.body_limit,
    }))
}
