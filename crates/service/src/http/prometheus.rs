//! `GET /metrics` (Prometheus text format) and the middleware that counts and
//! times every request by route template.
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use super::AppState;
use crate::service::error::Error;
use crate::telemetry;

/// Counts and times a request; unmatched paths share one label so arbitrary
/// URLs cannot blow up the series count.
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_string();
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_string();
    let response = next.run(req).await;
    telemetry::record_request(&method, &route, response.status().as_u16(), start.elapsed());
    response
}

/// Prometheus metrics: request counts and latency per route and status,
/// pipeline stage timings, inference queue depth and rejections, gallery
/// size, faces per photo. Needs a `match` key when keys exist; a separate
/// unauthenticated port can serve it too (`--metrics-addr`).
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "service",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain")),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("match"))),
)]
pub async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let text = telemetry::render(s.service.metrics_snapshot())
        .ok_or_else(|| Error::Unavailable("metrics are off: another metrics recorder is installed".into()))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}
