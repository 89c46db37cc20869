//! The Router alone, driven with `tower::ServiceExt::oneshot`.
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;
use visage::http::app;
use visage::server::Application;

use crate::helpers::{config, temp_dir};

#[tokio::test]
async fn health_ready_and_unknown_routes_through_the_router() {
    let application = Application::build(config(&temp_dir().join("v.db"))).await.unwrap();
    let router = app(application.state().clone());
    let r = router.clone().oneshot(Request::get("/healthz").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("x-request-id"));
    let r = router.clone().oneshot(Request::get("/readyz").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = router.clone().oneshot(Request::get("/v2/nothing").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["code"], "not_found");
    let r = router.oneshot(Request::delete("/v1/detect").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}
