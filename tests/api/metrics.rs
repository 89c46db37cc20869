//! `/metrics`: the Prometheus exposition parses and shows requests by route
//! and status, stage timings, faces per photo, queue and gallery gauges; a
//! separate port serves it alone and open. (The curl tests parse it with the
//! reference Python parser too.)
use std::collections::HashMap;

use crate::helpers::{config, photo, spawn_with, temp_dir};

/// Parses the text format: `# HELP` / `# TYPE` comments and
/// `name{label="value",...} number` samples; panics on anything else.
fn parse(text: &str) -> Vec<(String, HashMap<String, String>, f64)> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(comment.starts_with("HELP ") || comment.starts_with("TYPE "), "bad comment: {line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let mut labels = HashMap::new();
                for pair in body.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("bad label: {line}"));
                    labels.insert(k.to_string(), v.trim_end_matches('"').to_string());
                }
                (name, labels)
            }
            None => (series, HashMap::new()),
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') && !name.is_empty(),
            "bad name: {line}"
        );
        samples.push((name.to_string(), labels, value));
    }
    samples
}

fn value(samples: &[(String, HashMap<String, String>, f64)], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_requests_stages_queue_and_gallery() {
    let dir = temp_dir();
    let mut cfg = config(&crate::helpers::fresh_db(&dir));
    cfg.metrics_addr = Some("127.0.0.1:0".into());
    let mut app = spawn_with(cfg).await;
    app.enroll("Barack Obama", "obama.jpg").await;
    let r = app.post_image("/v1/identify", photo("obama2.jpg"), &[]).await;
    assert_eq!(r.status(), 200);
    let r = app.post_image("/v1/detect", photo("biden.jpg"), &[]).await;
    assert_eq!(r.status(), 200);
    let r = app.client.get(app.url("/no/such/route/12345")).send().await.unwrap();
    assert_eq!(r.status(), 404);

    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.unwrap();
    let samples = parse(&text);
    let count = |route: &str, status: &str| {
        value(&samples, "visage_http_requests_total", &[("route", route), ("status", status)]).unwrap_or(0.0)
    };
    assert!(count("/v1/detect", "200") >= 1.0, "{text}");
    assert!(count("/v1/identify", "200") >= 1.0);
    assert!(count("/v1/enroll", "201") >= 1.0);
    // Unknown paths share one series, whatever the URL.
    assert!(count("unmatched", "404") >= 1.0);
    assert!(!text.contains("12345"), "a raw path leaked into a label");
    assert!(
        value(&samples, "visage_http_request_duration_seconds_count", &[("route", "/v1/detect"), ("status", "200")])
            .is_some_and(|n| n >= 1.0)
    );
    for stage in ["decode", "detect", "align", "embed", "search"] {
        let n = value(&samples, "visage_stage_duration_seconds_count", &[("stage", stage)]);
        assert!(n.is_some_and(|n| n >= 1.0), "no {stage} timings");
        let le = value(&samples, "visage_stage_duration_seconds_bucket", &[("stage", stage), ("le", "+Inf")]);
        assert_eq!(le, n, "{stage}: the +Inf bucket counts every observation");
    }
    assert!(value(&samples, "visage_faces_per_photo_count", &[]).is_some_and(|n| n >= 3.0));
    assert!(value(&samples, "visage_faces_per_photo_bucket", &[("le", "1")]).is_some());
    assert_eq!(value(&samples, "visage_gallery_faces", &[]), Some(1.0));
    assert_eq!(value(&samples, "visage_gallery_persons", &[]), Some(1.0));
    assert_eq!(value(&samples, "visage_database_up", &[]), Some(1.0));
    assert_eq!(value(&samples, "visage_inference_queue_depth", &[]), Some(0.0));
    assert!(value(&samples, "visage_inference_queue_capacity", &[]).is_some_and(|c| c >= 1.0));
    assert!(text.contains("# TYPE visage_http_request_duration_seconds histogram"));

    // The separate port serves /metrics alone, and without a key.
    let metrics = app.metrics_address.clone().expect("a metrics listener");
    let key = app.post_json("/v1/keys", &serde_json::json!({"name": "ops", "scope": "admin"})).await;
    assert!(key["key"].is_string());
    let main = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(main.status(), 401, "the main port's /metrics needs a key once keys exist");
    let r = app.client.get(format!("{metrics}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    parse(&r.text().await.unwrap());
    let r = app.client.get(format!("{metrics}/v1/info")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    app.stop().await;
}
