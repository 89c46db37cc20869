//! The HTTP API (axum): routes, middleware and the mapping of domain results
//! to JSON. Handlers are thin: they parse, call the service, and serialise.
mod assets;
mod auth;
mod clusters;
mod embedder_switch;
mod error;
mod faces;
mod gallery_reports;
mod health;
mod input;
mod keys;
pub mod limits;
mod matching;
pub mod openapi;
mod persons;
mod prometheus;
mod schema;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::middleware::from_fn_with_state;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;
use utoipa::OpenApi as _;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

pub use auth::Caller;
pub use error::{ApiError, RETRY_AFTER_SECS, status};
pub use input::{Input, JsonBody, PathParams, QueryParams, decode_base64};

use crate::domain::Scope;
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
    /// Request rates and failed authentications, per key and client address.
    pub limits: Arc<limits::Limits>,
}

/// The address of a connection's peer, put on each of its requests.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::IpAddr);

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
        Err(_) => ApiError::Timeout(s.request_timeout.as_secs_f64()).into_response(),
    }
}

/// An error answered before the whole request body was read (a missing key,
/// a wrong content type, a body over the limit) leaves unread bytes on an
/// HTTP/1 connection, which the server then closes: say so with
/// `Connection: close`, so a client's connection pool does not reuse it and
/// hit a broken pipe on its next request.
async fn close_if_body_unread(
    req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, Version, header};
    let headers = req.headers();
    let has_body = req.version() <= Version::HTTP_11
        && (headers.get(header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0")
            || headers.contains_key(header::TRANSFER_ENCODING));
    let mut response = next.run(req).await;
    let early = [
        StatusCode::BAD_REQUEST,
        StatusCode::UNAUTHORIZED,
        StatusCode::FORBIDDEN,
        StatusCode::NOT_FOUND,
        StatusCode::METHOD_NOT_ALLOWED,
        StatusCode::REQUEST_TIMEOUT,
        StatusCode::PAYLOAD_TOO_LARGE,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    ];
    if has_body && early.contains(&response.status()) {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Every route with its OpenAPI operation, from one list. With a state, each
/// scoped route also gets its access check; without one only the document
/// is wanted.
fn routes(state: Option<&AppState>) -> OpenApiRouter<AppState> {
    let scoped = |r: UtoipaMethodRouter<AppState>, scope: Scope| match state {
        Some(s) => r.map(|m| m.route_layer(from_fn_with_state((s.clone(), scope), auth::require))),
        None => r,
    };
    let api = OpenApiRouter::new()
        .routes(scoped(routes!(persons::create), Scope::Enroll))
        .routes(scoped(routes!(persons::list), Scope::Admin))
        .routes(scoped(routes!(persons::show, persons::update, persons::remove), Scope::Admin))
        .routes(scoped(routes!(matching::enroll_face), Scope::Enroll))
        .routes(scoped(routes!(persons::remove_face), Scope::Admin))
        .routes(scoped(routes!(matching::enroll), Scope::Enroll))
        .routes(scoped(routes!(matching::verify), Scope::Match))
        .routes(scoped(routes!(matching::identify), Scope::Match))
        .routes(scoped(routes!(faces::keep), Scope::Enroll))
        .routes(scoped(routes!(faces::list), Scope::Admin))
        .routes(scoped(routes!(faces::show, faces::update, faces::remove), Scope::Admin))
        .routes(scoped(routes!(faces::crop), Scope::Admin))
        .routes(scoped(routes!(clusters::list), Scope::Admin))
        .routes(scoped(routes!(clusters::assign), Scope::Admin))
        .routes(scoped(routes!(clusters::merge), Scope::Admin))
        .routes(scoped(routes!(clusters::search), Scope::Admin))
        .routes(scoped(routes!(matching::compare), Scope::Match))
        .routes(scoped(routes!(matching::detect), Scope::Match))
        .routes(scoped(routes!(matching::embed), Scope::Match))
        .routes(scoped(routes!(health::info), Scope::Match))
        .routes(scoped(routes!(keys::create, keys::list), Scope::Admin))
        .routes(scoped(routes!(keys::revoke), Scope::Admin))
        .routes(scoped(routes!(keys::audit), Scope::Admin))
        .routes(scoped(routes!(webhooks::create, webhooks::list), Scope::Admin))
        .routes(scoped(routes!(webhooks::show, webhooks::update, webhooks::remove), Scope::Admin))
        .routes(scoped(routes!(webhooks::deliveries), Scope::Admin))
        .routes(scoped(routes!(webhooks::retry), Scope::Admin))
        .routes(scoped(routes!(webhooks::types), Scope::Admin))
        .routes(scoped(routes!(gallery_reports::calibration), Scope::Admin))
        .routes(scoped(routes!(gallery_reports::health), Scope::Admin))
        .routes(scoped(routes!(embedder_switch::models), Scope::Admin))
        .routes(scoped(routes!(embedder_switch::changes), Scope::Admin))
        .routes(scoped(routes!(embedder_switch::switch), Scope::Admin))
        .routes(scoped(routes!(embedder_switch::prune), Scope::Admin));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(assets::docs))
        .routes(routes!(assets::asset))
        .routes(routes!(assets::ui))
        .routes(scoped(routes!(prometheus::metrics), Scope::Match))
        .nest("/v1", api)
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::document(routes(None).into_openapi())
}

/// The document as served, built once.
fn openapi_text() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")))
}

/// `/metrics` alone and open, for a separate (internal) port.
pub fn metrics_app(state: AppState) -> Router {
    let (router, _) = OpenApiRouter::new().routes(routes!(prometheus::metrics)).split_for_parts();
    router.fallback(|| async { ApiError::RouteNotFound }).with_state(state)
}

/// The whole API as a `Router`, ready to serve or to test with `oneshot`.
pub fn app(state: AppState) -> Router {
    let (router, _) = routes(Some(&state)).split_for_parts();
    let body_limit = state.body_limit;
    router
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state.clone())
        .layer(from_fn_with_state(state, time_limit))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(prometheus::track))
        .layer(axum::middleware::from_fn(close_if_body_unread))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    let route = req
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map_or_else(|| req.uri().path().to_string(), |m| m.as_str().to_string());
                    let span = tracing::info_span!(
                        "request",
                        method = %req.method(),
                        route,
                        request_id = id,
                        key_id = tracing::field::Empty
                    );
                    #[cfg(feature = "otel")]
                    crate::otel::continue_trace(&span, req.headers());
                    span
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
