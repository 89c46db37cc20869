//! The HTTP API (axum): routes, middleware and the mapping of domain results
//! to JSON. Handlers are thin: they parse, call the service, and serialise.
mod auth;
mod error;
mod health;
mod input;
mod keys;
mod matching;
mod persons;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodRouter, delete, get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

pub use auth::Caller;
pub use error::{RETRY_AFTER_SECS, status};
pub use input::{ImageForm, JsonBody, PathParams, decode_base64};
pub use persons::valid_name;

use crate::error::Error;
use crate::service::Service;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Whether requests without a key pass while no key exists (loopback or
    /// `--insecure-no-auth`); once a key exists, every scoped request needs one.
    pub open_without_keys: bool,
    /// Longest a whole request may take (408 after).
    pub request_timeout: Duration,
    /// Longest a client may take to send headers (the connection is closed after).
    pub header_read_timeout: Duration,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Answers 408 when a request (body upload included) outlasts the limit.
async fn time_limit(
    axum::extract::State(s): axum::extract::State<AppState>,
    req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(s.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => Error::Timeout(s.request_timeout.as_secs_f64()).into_response(),
    }
}

/// The whole API as a `Router`, ready to serve or to test with `oneshot`.
pub fn app(state: AppState) -> Router {
    // Each method of each route names the scope it needs (see auth.rs).
    let s = &state;
    let matching = |r: MethodRouter<AppState>| r.route_layer(from_fn_with_state(s.clone(), auth::require_match));
    let enroll = |r: MethodRouter<AppState>| r.route_layer(from_fn_with_state(s.clone(), auth::require_enroll));
    let admin = |r: MethodRouter<AppState>| r.route_layer(from_fn_with_state(s.clone(), auth::require_admin));
    let api = Router::new()
        .route("/persons", enroll(post(persons::create)).merge(admin(get(persons::list))))
        .route("/persons/{id}", admin(get(persons::show).patch(persons::update).delete(persons::remove)))
        .route("/persons/{id}/faces", enroll(post(matching::enroll_face)))
        .route("/persons/{id}/faces/{face_id}", admin(delete(persons::remove_face)))
        .route("/enroll", enroll(post(matching::enroll)))
        .route("/verify", matching(post(matching::verify)))
        .route("/identify", matching(post(matching::identify)))
        .route("/compare", matching(post(matching::compare)))
        .route("/detect", matching(post(matching::detect)))
        .route("/embed", matching(post(matching::embed)))
        .route("/info", matching(get(health::info)))
        .route("/keys", admin(post(keys::create).get(keys::list)))
        .route("/keys/{id}", admin(delete(keys::revoke)))
        .route("/audit", admin(get(keys::audit)));
    let body_limit = state.body_limit;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .nest("/v1", api)
        .fallback(|| async { Error::RouteNotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .with_state(state.clone())
        .layer(from_fn_with_state(state, time_limit))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    let route = req
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map_or_else(|| req.uri().path().to_string(), |m| m.as_str().to_string());
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        route,
                        request_id = id,
                        key_id = tracing::field::Empty
                    )
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
