//! The image endpoints, the three ways to send an image, and bad input.
use base64::Engine as _;
use serde_json::{Value, json};

use crate::helpers::{assert_error, config, noise_png, photo, spawn_app, spawn_with, temp_dir};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn detect_embed_and_compare() {
    let app = spawn_app().await;
    let r = app.post_raw("/v1/detect", photo("obama.jpg"), "image/jpeg").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["image"], json!({"width": 910, "height": 1137}));
    let faces = v["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1);
    let f = &faces[0];
    for key in ["box", "landmarks", "score", "quality"] {
        assert!(f.get(key).is_some(), "{key} in {f}");
    }
    assert!(f.get("embedding").is_none());

    let r = app.post_image("/v1/embed", photo("obama.jpg"), &[]).await;
    let v: Value = r.json().await.unwrap();
    let e = v["faces"][0]["embedding"].as_array().unwrap();
    // The default embedder fuses SFace and dlib's ResNet: 128 + 128 values.
    assert_eq!(e.len(), 256);
    let norm: f64 = e.iter().map(|x| x.as_f64().unwrap().powi(2)).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3);
    assert!(v["faces"][0]["model"].as_str().unwrap().starts_with("sface+dlib@sha256:"));

    // JSON with base64, one in a data URL.
    let body = json!({
        "image_a": b64(&photo("obama.jpg")),
        "image_b": format!("data:image/jpeg;base64,{}", b64(&photo("obama2.jpg"))),
    });
    let v: Value = app.post_json("/v1/compare", &body).await;
    assert_eq!(v["match"], true, "{v}");
    let form = reqwest::multipart::Form::new()
        .part("image_a", reqwest::multipart::Part::bytes(photo("obama.jpg")))
        .part("image_b", reqwest::multipart::Part::bytes(photo("biden.jpg")));
    let v: Value = app.client.post(app.url("/v1/compare")).multipart(form).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["match"], false, "{v}");
    assert!(v["similarity"].as_f64().unwrap() < v["threshold"].as_f64().unwrap());

    // A photo without faces is a valid answer for detect, an error for compare.
    let v: Value = app.post_raw("/v1/detect", noise_png(320, 240), "image/png").await.json().await.unwrap();
    assert_eq!(v["faces"], json!([]));
    let body = json!({"image_a": b64(&photo("obama.jpg")), "image_b": b64(&noise_png(64, 64))});
    assert_error(app.client.post(app.url("/v1/compare")).json(&body).send().await.unwrap(), 422, "no_face").await;
    app.stop().await;
}

#[tokio::test]
async fn bad_images_and_bodies_get_clear_errors() {
    let app = spawn_app().await;
    let garbage: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
    assert_error(app.post_raw("/v1/detect", garbage, "image/jpeg").await, 422, "invalid_image").await;
    assert_error(app.post_raw("/v1/detect", Vec::new(), "image/jpeg").await, 400, "missing_image").await;
    assert_error(app.post_raw("/v1/detect", b"hello".to_vec(), "text/plain").await, 415, "unsupported_media_type")
        .await;
    let truncated = photo("obama.jpg")[..3000].to_vec();
    assert_error(app.post_raw("/v1/detect", truncated, "image/jpeg").await, 422, "invalid_image").await;
    let r = app.client.post(app.url("/v1/detect")).json(&json!({"image": "@@@not base64@@@"})).send().await.unwrap();
    assert_error(r, 400, "invalid_base64").await;
    let r = app.client.post(app.url("/v1/detect")).json(&json!({"picture": "aGVsbG8="})).send().await.unwrap();
    assert_error(r, 400, "missing_image").await;
    let r = app.client.post(app.url("/v1/detect")).json(&json!({"image": 42})).send().await.unwrap();
    assert_error(r, 400, "invalid_base64").await;
    let form = reqwest::multipart::Form::new().text("name", "no image");
    let r = app.client.post(app.url("/v1/detect")).multipart(form).send().await.unwrap();
    assert_error(r, 400, "missing_image").await;
    let form = reqwest::multipart::Form::new()
        .part("image", reqwest::multipart::Part::bytes(photo("obama.jpg")))
        .part("image", reqwest::multipart::Part::bytes(photo("obama.jpg")));
    let r = app.client.post(app.url("/v1/detect")).multipart(form).send().await.unwrap();
    assert_error(r, 400, "invalid_request").await;
    // Unknown person, malformed id, a person with no faces.
    let r =
        app.post_image("/v1/verify", photo("obama.jpg"), &[("person_id", "0123456789abcdef0123456789abcdef")]).await;
    assert_error(r, 404, "person_not_found").await;
    let r = app.post_image("/v1/verify", photo("obama.jpg"), &[("person_id", "'; DROP TABLE faces;--")]).await;
    assert_error(r, 404, "person_not_found").await;
    assert_error(app.post_image("/v1/verify", photo("obama.jpg"), &[]).await, 400, "invalid_parameter").await;
    let p: Value = app.post_json("/v1/persons", &json!({"name": "Empty"})).await;
    let r = app.post_image("/v1/verify", photo("obama.jpg"), &[("person_id", p["id"].as_str().unwrap())]).await;
    assert_error(r, 409, "no_enrolled_faces").await;
    // Parameters out of range.
    for (k, v) in [
        ("threshold", "NaN"),
        ("threshold", "-2"),
        ("threshold", "1.5"),
        ("top_k", "0"),
        ("top_k", "-1"),
        ("top_k", "1000000000"),
    ] {
        let r = app.post_image("/v1/identify", photo("obama.jpg"), &[(k, v)]).await;
        assert_error(r, 400, "invalid_parameter").await;
    }
    // Still ready after all that.
    assert_eq!(app.client.get(app.url("/readyz")).send().await.unwrap().status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_413() {
    let dir = temp_dir();
    let mut c = config(&crate::helpers::fresh_db(&dir));
    c.body_limit = 64 * 1024;
    let app = spawn_with(c).await;
    let big = photo("obama.jpg"); // ~100 KB
    assert!(big.len() > 64 * 1024);
    assert_error(app.post_raw("/v1/detect", big.clone(), "image/jpeg").await, 413, "body_too_large").await;
    assert_error(app.post_image("/v1/detect", big.clone(), &[]).await, 413, "body_too_large").await;
    let r = app.client.post(app.url("/v1/detect")).json(&json!({"image": b64(&big)})).send().await.unwrap();
    assert_error(r, 413, "body_too_large").await;
    app.stop().await;
}

#[tokio::test]
async fn decompression_bombs_are_refused_before_decoding() {
    let dir = temp_dir();
    let mut c = config(&crate::helpers::fresh_db(&dir));
    c.pipeline.decode.max_pixels = 500_000;
    let app = spawn_with(c).await;
    // obama.jpg is 910x1137 = 1.03 MP
    assert_error(app.post_raw("/v1/detect", photo("obama.jpg"), "image/jpeg").await, 422, "image_too_large").await;
    app.stop().await;
}

#[tokio::test]
async fn overload_is_a_quick_429_with_retry_after() {
    let dir = temp_dir();
    let mut c = config(&crate::helpers::fresh_db(&dir));
    c.workers = 1;
    c.queue = 1;
    let app = spawn_with(c).await;
    let body = photo("obama.jpg");
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (client, url, body) = (app.client.clone(), app.url("/v1/embed"), body.clone());
        set.spawn(
            async move { client.post(url).header("content-type", "image/jpeg").body(body).send().await.unwrap() },
        );
    }
    let responses = set.join_all().await;
    let mut ok = 0;
    let mut rejected = 0;
    for r in responses {
        match r.status().as_u16() {
            200 => ok += 1,
            429 => {
                assert_eq!(r.headers()["retry-after"], "1");
                assert_error(r, 429, "overloaded").await;
                rejected += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(ok >= 1 && rejected >= 1, "ok {ok}, rejected {rejected}");
    // Liveness answers while the queue is full, and the service recovers.
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(app.post_raw("/v1/detect", body, "image/jpeg").await.status(), 200);
    app.stop().await;
}
