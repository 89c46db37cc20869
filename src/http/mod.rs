//! The HTTP API (axum): routes, middleware and the mapping of domain results
//! to JSON. Handlers are thin: they parse, call the service, and serialise.
mod error;
mod health;
mod input;
mod matching;
mod persons;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::routing::{get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

pub use error::{RETRY_AFTER_SECS, status};
pub use input::{ImageForm, JsonBody, decode_base64};

use crate::error::Error;
use crate::service::Service;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole API as a `Router`, ready to serve or to test with `oneshot`.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/persons", post(persons::create).get(persons::list))
        .route("/persons/{id}", get(persons::show).patch(persons::update).delete(persons::remove))
        .route("/persons/{id}/faces", post(matching::enroll_face))
        .route("/persons/{id}/faces/{face_id}", axum::routing::delete(persons::remove_face))
        .route("/enroll", post(matching::enroll))
        .route("/verify", post(matching::verify))
        .route("/identify", post(matching::identify))
        .route("/compare", post(matching::compare))
        .route("/detect", post(matching::detect))
        .route("/embed", post(matching::embed))
        .route("/info", get(health::info));
    let body_limit = state.body_limit;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .nest("/v1", api)
        .fallback(|| async { Error::RouteNotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    let route = req
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map_or_else(|| req.uri().path().to_string(), |m| m.as_str().to_string());
                    tracing::info_span!("request", method = %req.method(), route, request_id = id)
                })
                .on_request(())
                .on_response(|res: &axum::response::Response, latency: Duration, _span: &tracing::Span| {
                    tracing::info!(status = res.status().as_u16(), latency_ms = latency.as_secs_f64() * 1000.0, "done");
                })
                .on_failure(DefaultOnFailure::new().level(Level::WARN)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}
