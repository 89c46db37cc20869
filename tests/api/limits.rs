//! Abuse limits over real connections: each key's requests at its scope's
//! rate, failed authentications per client address (past the burst, even a
//! right key waits), the client named by `X-Forwarded-For` only behind a
//! trusted proxy, 429 `rate_limited` with `Retry-After`, and the metrics.
use reqwest::StatusCode;
use visage_service::http::limits::LimitsConfig;

use crate::auth::keys_in;
use crate::helpers::{TestApp, assert_error, config, fresh_db, spawn_with, temp_dir};

async fn info(app: &TestApp, key: &str, forwarded: Option<&str>) -> reqwest::Response {
    let mut r = app.client.get(app.url("/v1/info")).bearer_auth(key);
    if let Some(f) = forwarded {
        r = r.header("x-forwarded-for", f);
    }
    r.send().await.unwrap()
}

async fn spawn(limits: LimitsConfig) -> (tempfile::TempDir, TestApp, [String; 3]) {
    let dir = temp_dir();
    let db = fresh_db(&dir);
    let keys = keys_in(&db).await;
    let mut c = config(&db);
    c.limits = limits;
    (dir, spawn_with(c).await, keys)
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()["retry-after"].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn each_key_is_held_to_its_scope_rate_and_others_are_not() {
    let limits = LimitsConfig {
        per_scope: vec![(visage_service::domain::Scope::Match, "2/h".parse().unwrap())],
        ..LimitsConfig::default()
    };
    let (_dir, app, [admin, _, matcher]) = spawn(limits).await;
    for _ in 0..2 {
        assert_eq!(info(&app, &matcher, None).await.status(), StatusCode::OK);
    }
    let r = info(&app, &matcher, None).await;
    assert!(retry_after(&r) > 60, "{:?}", r.headers());
    let body = assert_error(r, 429, "rate_limited").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("rate limit"), "{body}");
    for _ in 0..5 {
        assert_eq!(info(&app, &admin, None).await.status(), StatusCode::OK, "admin has no rate here");
    }
    let metrics = app.client.get(app.url("/metrics")).bearer_auth(&admin).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("visage_rate_limited_total{limit=\"key\"} 1"), "{metrics}");
    app.stop().await;
}

#[tokio::test]
async fn a_guessed_key_costs_time_past_the_burst_even_for_a_right_key_from_that_address() {
    let limits = LimitsConfig { auth_failures: Some("1/h:3".parse().unwrap()), ..LimitsConfig::default() };
    let (_dir, app, [admin, _, _]) = spawn(limits).await;
    for i in 0..3 {
        let r = info(&app, &format!("vsk_000000000000000{i}_guess"), None).await;
        assert_error(r, 401, "unauthorized").await;
    }
    let r = info(&app, "vsk_0000000000000009_guess", None).await;
    assert!(retry_after(&r) > 60);
    assert_error(r, 429, "rate_limited").await;
    let r = info(&app, &admin, None).await;
    let body = assert_error(r, 429, "rate_limited").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("failed authentications"), "{body}");
    // A client cannot pick another address: X-Forwarded-For from an untrusted peer is ignored.
    assert_eq!(info(&app, &admin, Some("198.51.100.7")).await.status(), StatusCode::TOO_MANY_REQUESTS);
    // Health checks need no key and stay open.
    assert_eq!(app.client.get(app.url("/readyz")).send().await.unwrap().status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let limits = LimitsConfig {
        auth_failures: Some("1/h:2".parse().unwrap()),
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        ..LimitsConfig::default()
    };
    let (_dir, app, [admin, _, _]) = spawn(limits).await;
    let guesser = Some("203.0.113.9, 198.51.100.1");
    for _ in 0..2 {
        assert_eq!(info(&app, "vsk_0000000000000000_guess", guesser).await.status(), StatusCode::UNAUTHORIZED);
    }
    // The burst spent: the next wrong key bars the client (forwarded alone, it is the same client).
    let third = info(&app, "vsk_0000000000000000_guess", Some("198.51.100.1")).await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(info(&app, &admin, guesser).await.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy is not held back by the guesser.
    assert_eq!(info(&app, &admin, Some("198.51.100.2")).await.status(), StatusCode::OK);
    assert_eq!(info(&app, &admin, None).await.status(), StatusCode::OK, "the proxy's own requests");
    app.stop().await;
}
