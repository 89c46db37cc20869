//! The Router alone, driven with `tower::ServiceExt::oneshot`.
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;
use visage_service::http::app;
use visage_service::server::Application;

use crate::helpers::{config, temp_dir};

#[tokio::test]
async fn health_ready_and_unknown_routes_through_the_router() {
    let dir = temp_dir();
    let application = Application::build(config(&crate::helpers::fresh_db(&dir))).await.unwrap();
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

#[tokio::test]
async fn slow_clients_are_cut_off_headers_by_connection_close_bodies_by_408() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = crate::helpers::temp_dir();
    let mut cfg = crate::helpers::config(&crate::helpers::fresh_db(&dir));
    cfg.header_read_timeout = Duration::from_secs(1);
    cfg.request_timeout = Duration::from_secs(1);
    let app = crate::helpers::spawn_with(cfg).await;
    let addr = app.address.trim_start_matches("http://").to_string();
    // Slow loris: half a request line, then nothing. The server hangs up.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection was not closed");
    assert!(start.elapsed() < Duration::from_secs(4), "{:?}", start.elapsed());
    // A body that never finishes: 408 with the JSON error.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(
        b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\nabc",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"request_timeout\""), "{text}");
    // The service is fine afterwards, and shows its limits.
    let info = app.get_json("/v1/info").await;
    assert_eq!(info["limits"]["header_read_timeout_seconds"], 1.0);
    assert_eq!(info["limits"]["request_timeout_seconds"], 1.0);
    app.stop().await;
}

#[tokio::test]
async fn errors_before_the_body_is_read_close_the_connection() {
    let dir = temp_dir();
    let application = Application::build(config(&crate::helpers::fresh_db(&dir))).await.unwrap();
    let router = app(application.state().clone());
    // 415 with an unread body: the connection cannot be reused.
    let req = Request::post("/v1/detect")
        .header("content-type", "text/plain")
        .header("content-length", "5")
        .body(Body::from("hello"))
        .unwrap();
    let r = router.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.headers().get("connection").map(|v| v.to_str().unwrap()), Some("close"));
    // No body, or a successful answer: keep-alive as usual.
    let r = router.clone().oneshot(Request::get("/v2/nothing").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.headers().get("connection").is_none());
    let r = router.oneshot(Request::get("/healthz").body(Body::empty()).unwrap()).await.unwrap();
    assert!(r.headers().get("connection").is_none());
}
