//! Static files compiled into the binary: the documentation page's Swagger UI
//! (vendored, `assets/vendor/`) and the demo page. Nothing is fetched from
//! elsewhere at run time.
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;
use super::PathParams;

/// Name, content type and bytes of every served file.
const FILES: &[(&str, &str, &[u8])] = &[
    ("docs.js", "text/javascript", include_bytes!("../../../../assets/docs.js")),
    ("ui.js", "text/javascript", include_bytes!("../../../../assets/ui.js")),
    ("faces.js", "text/javascript", include_bytes!("../../../../assets/faces.js")),
    ("ui.css", "text/css", include_bytes!("../../../../assets/ui.css")),
    (
        "swagger-ui-bundle.js",
        "text/javascript",
        include_bytes!("../../../../assets/vendor/swagger-ui/swagger-ui-bundle.js"),
    ),
    ("swagger-ui.css", "text/css", include_bytes!("../../../../assets/vendor/swagger-ui/swagger-ui.css")),
];

/// The pages may load scripts, styles and images only from this service;
/// images and video from the page itself (uploads, the webcam) too.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
                   style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// An HTML page with the security headers every page carries.
pub fn html(body: &'static str) -> Response {
    let mut r = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("permissions-policy", HeaderValue::from_static("camera=(self), microphone=()"));
    r
}

/// The demo page: enroll a person from a photo or the webcam, then verify or
/// identify another photo, with the faces drawn; the person list with delete.
#[utoipa::path(
    get,
    path = "/",
    operation_id = "ui",
    tag = "service",
    responses((status = 200, description = "An HTML page", content_type = "text/html"))
)]
pub async fn ui() -> Response {
    html(include_str!("../../../../assets/ui.html"))
}

/// Interactive API documentation (Swagger UI, served from this binary).
#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "docs",
    tag = "service",
    responses((status = 200, description = "An HTML page", content_type = "text/html"))
)]
pub async fn docs() -> Response {
    html(include_str!("../../../../assets/docs.html"))
}

/// A static file of the documentation and demo pages.
#[utoipa::path(
    get,
    path = "/assets/{file}",
    operation_id = "asset",
    tag = "service",
    params(("file" = String, Path, description = "A file name, e.g. `swagger-ui.css`")),
    responses(
        (status = 200, description = "The file"),
        (status = 404, description = "No such file", body = super::error::ErrorBody),
    )
)]
pub async fn asset(PathParams(file): PathParams<String>) -> Result<Response, ApiError> {
    let Some((_, content_type, bytes)) = FILES.iter().find(|(name, _, _)| *name == file) else {
        return Err(ApiError::RouteNotFound);
    };
    let mut r = (StatusCode::OK, [(header::CONTENT_TYPE, *content_type)], *bytes).into_response();
    let h = r.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    Ok(r)
}
