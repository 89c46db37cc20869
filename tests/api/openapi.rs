//! The OpenAPI document against the router: every documented operation is
//! routed, no route or method exists that the document lacks, and the
//! document served is the one the code generates. (`make test` also checks it
//! with a standard validator: tests/curl/ecosystem.sh.)
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use visage_service::http::app;
use visage_service::server::Application;

use crate::helpers::{config, root, temp_dir};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn call(router: &axum::Router, method: &str, path: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
        .uri(path)
        .body(Body::empty())
        .unwrap();
    let r = router.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let body = axum::body::to_bytes(r.into_body(), 8 << 20).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_operation_is_routed() {
    let dir = temp_dir();
    let application = Application::build(config(&crate::helpers::fresh_db(&dir))).await.unwrap();
    let router = app(application.state().clone());
    let (status, served) = call(&router, "get", "/openapi.json").await;
    assert_eq!(status, 200);
    let generated = serde_json::to_value(visage_service::http::openapi()).unwrap();
    assert_eq!(served, generated, "/openapi.json is the generated document");
    assert_eq!(served["openapi"], "3.1.0");
    let paths = served["paths"].as_object().unwrap();
    assert!(paths.len() >= 19, "{} paths", paths.len());
    let mut checked = 0;
    for (template, item) in paths {
        // Ids shaped like ours, which do not exist.
        let path = template
            .replace("{id}", "0123456789abcdef0123456789abcdef")
            .replace("{face_id}", "0123456789abcdef0123456789abcdef")
            .replace("{file}", "docs.js");
        for method in METHODS {
            let (status, body) = call(&router, method, &path).await;
            if let Some(op) = item.get(method) {
                // Documented: routed (a 404 may only be about the id), and
                // the answer's status is one the operation documents.
                assert_ne!(body["error"]["code"], "not_found", "{method} {template} is not routed");
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {template} is not routed");
                assert!(
                    op["responses"].get(status.as_str()).is_some(),
                    "{method} {template} answered {status}, which its operation does not document"
                );
                assert!(op["operationId"].is_string() && op["tags"].is_array(), "{method} {template}");
                checked += 1;
            } else {
                // Not documented: must not be routed either.
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {template} exists but is not documented");
            }
        }
    }
    assert!(checked >= 23, "{checked} operations");
    // Every error code is in the document, with an example.
    let codes = served["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"].clone();
    for e in visage_service::http::ApiError::samples() {
        assert!(codes.as_array().unwrap().contains(&Value::from(e.code().name())), "{} is not documented", e.code());
    }
    let text = served.to_string();
    for code in ["no_face", "person_not_found", "overloaded", "unauthorized", "face_too_blurry"] {
        assert!(text.contains(&format!("\"{code}\":{{\"value\"")), "no example of {code}");
    }
}

#[test]
fn routes_are_only_added_through_the_documented_router() {
    // A plain axum route would be served without being in the document.
    let mut files = vec![];
    let mut folders = vec![root().join("crates/service/src/http")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() { folders.push(path) } else { files.push(path) }
        }
    }
    assert!(files.len() > 10, "{files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for forbidden in [".route(", ".route_service(", ".nest_service(", "Router::new()", ".merge("] {
            // `OpenApiRouter::new()` is the documented router; a bare `Router::new()` is not.
            let bare = text.match_indices(forbidden).any(|(i, _)| !text[..i].ends_with("OpenApi"));
            assert!(!bare, "{} uses {forbidden}: register routes with routes!()", path.display());
        }
    }
}

#[tokio::test]
async fn the_docs_page_and_its_assets_are_served_from_the_binary() {
    let dir = temp_dir();
    let application = Application::build(config(&crate::helpers::fresh_db(&dir))).await.unwrap();
    let router = app(application.state().clone());
    let r = router.clone().oneshot(Request::get("/docs").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
    let html = String::from_utf8(axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    let assets: Vec<&str> = html.split('"').filter(|s| s.starts_with("/assets/")).collect();
    assert!(assets.len() >= 3, "{assets:?}");
    for asset in assets {
        let r = router.clone().oneshot(Request::get(asset).body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        let len = axum::body::to_bytes(r.into_body(), 8 << 20).await.unwrap().len();
        assert!(len > 100, "{asset}: {len} bytes");
    }
    let (status, body) = call(&router, "get", "/assets/..%2FCargo.toml").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
}
