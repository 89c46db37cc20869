//! Moving a gallery to another embedder without losing anyone: embeddings
//! kept beside (made from kept crops as `visage reembed --to` makes them),
//! the change report, the switch refused while a face lacks the model, the
//! switch and back, pruning.
use serde_json::{Value, json};
use visage_service::service::{ServiceConfig, ThresholdChoice};
use visage_service::vision::PipelineConfig;

use crate::helpers::{TestApp, assert_error, config, fresh_db, photo, root, spawn_with, temp_dir};

/// A service of another embedder on the same database, as the admin commands open it.
async fn service_of(embedder: &str, db: &std::path::Path) -> visage_service::service::Service {
    let pipeline = PipelineConfig { embedder: Some(embedder.into()), ..PipelineConfig::default() };
    let (base, choice) = (ServiceConfig::default(), ThresholdChoice::default());
    let keys = visage_service::sealing::DataKeys::none();
    visage_service::admin::open_service(&root().join("models"), pipeline, db, &keys, 1, base, &choice).await.unwrap()
}

async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client.post(app.url(path)).json(&body).send().await.unwrap()
}

/// (embedder, own, beside) of each model of the gallery.
async fn models(app: &TestApp) -> Vec<(String, u64, u64)> {
    let v = app.get_json("/v1/gallery/models").await;
    let list = v["models"].as_array().unwrap_or_else(|| panic!("{v}"));
    list.iter()
        .map(|m| (m["embedder"].as_str().unwrap().into(), m["own"].as_u64().unwrap(), m["beside"].as_u64().unwrap()))
        .collect()
}

#[tokio::test]
async fn a_gallery_moves_to_another_embedder_and_back_without_losing_anyone() {
    let dir = temp_dir();
    let db = fresh_db(&dir);
    let mut c = config(&db);
    c.service.keep_crops = true;
    let mut app = spawn_with(c).await;
    let obama = app.enroll("Barack Obama", "obama.jpg").await;
    let r = app.post_raw(&format!("/v1/persons/{obama}/faces"), photo("obama2.jpg"), "image/jpeg").await;
    assert_eq!(r.status(), 201);
    app.enroll("Joe Biden", "biden.jpg").await;
    let fused = app.get_json("/v1/gallery/models").await["serving"].as_str().unwrap().to_string();
    assert_eq!(models(&app).await, [("sface+dlib".to_string(), 3, 0)]);
    // Every face's own embedding is this service's: nothing to compare with.
    let r = app.client.get(app.url("/v1/gallery/models/changes")).send().await.unwrap();
    assert_error(r, 404, "model_not_found").await;

    // SFace embeddings beside, from the kept crops (no photos).
    let sface = service_of("sface", &db).await;
    let s = visage_service::admin::reembed::run(&sface, None, None).await.unwrap();
    assert_eq!((s.faces_to_reembed, s.reembedded, s.from_crops), (3, 3, 3), "{s:?}");
    let c = s.changes.expect("a change report");
    assert_eq!((c.faces, c.probes, c.from.model.as_str()), (3, 3, fused.as_str()), "{c:?}");
    // Obama's two faces name each other under both models; Biden, alone, is unknown.
    assert_eq!((c.from.right, c.to.right, c.from.alone, c.to.alone_named), (2, 2, 1, 0), "{c:?}");
    assert_eq!((c.unchanged, c.changed), (3, 0), "{c:?}");
    sface.store().close().await;
    // A service of SFace started now compares every face.
    let sface = service_of("sface", &db).await;
    assert_eq!((sface.gallery_info().faces, sface.gallery_info().faces_other_model), (3, 0));
    let sface_model = sface.model().to_string();
    assert_eq!(models(&app).await, [("sface+dlib".to_string(), 3, 0), ("sface-2021dec-int8bq".to_string(), 0, 3)]);
    let v = app.get_json("/v1/gallery/models/changes?to=sface").await;
    assert_eq!(
        (v["faces"].as_u64(), v["complete"].as_bool(), v["to"]["model"].as_str()),
        (Some(3), Some(true), Some(sface_model.as_str())),
        "{v}"
    );

    // A face enrolled meanwhile has no SFace embedding: the switch is refused, nothing changes.
    let r = app.post_raw(&format!("/v1/persons/{obama}/faces"), photo("obama3.jpg"), "image/jpeg").await;
    assert_eq!(r.status(), 201);
    let refused =
        assert_error(post(&app, "/v1/gallery/models/switch", json!({"model": "sface"})).await, 409, "model_incomplete")
            .await;
    assert!(refused["error"]["message"].as_str().unwrap().starts_with("1 faces"), "{refused}");
    assert_error(post(&app, "/v1/gallery/models/switch", json!({"model": "arcface"})).await, 404, "model_not_found")
        .await;
    assert_error(
        post(&app, "/v1/gallery/models/switch", json!({"model": "sface", "extra": 1})).await,
        400,
        "invalid_json",
    )
    .await;
    assert_eq!(models(&app).await, [("sface+dlib".to_string(), 4, 0), ("sface-2021dec-int8bq".to_string(), 0, 3)]);
    // Run again, the re-embedding does the one face left.
    let s = visage_service::admin::reembed::run(&sface, None, None).await.unwrap();
    assert_eq!((s.faces_to_reembed, s.reembedded), (1, 1), "{s:?}");
    sface.store().close().await;

    let v: Value = post(&app, "/v1/gallery/models/switch", json!({"model": "sface"})).await.json().await.unwrap();
    assert_eq!(v, json!({"switched": 4, "lacking": 0, "done": true}));
    assert_eq!(models(&app).await, [("sface+dlib".to_string(), 0, 4), ("sface-2021dec-int8bq".to_string(), 4, 0)]);
    // This (fused) service still finds everyone: its embeddings are kept beside.
    let v: Value = app.post_image("/v1/identify", photo("biden.jpg"), &[]).await.json().await.unwrap();
    assert_eq!(v["faces"][0]["status"], "identified", "{v}");
    let info = app.get_json("/v1/info").await;
    assert_eq!(
        (info["gallery"]["faces"].as_u64(), info["gallery"]["faces_other_model"].as_u64()),
        (Some(4), Some(0)),
        "{info}"
    );
    // ... so pruning them is refused; pruning SFace's deletes nothing (none is kept beside).
    assert_error(post(&app, "/v1/gallery/models/prune", json!({})).await, 409, "model_in_use").await;
    let v: Value = post(&app, "/v1/gallery/models/prune", json!({"model": "sface"})).await.json().await.unwrap();
    assert_eq!(v, json!({"deleted": 0}));

    // Back: the switch undone, then the SFace embeddings pruned.
    let v: Value = post(&app, "/v1/gallery/models/switch", json!({"model": "sface+dlib"})).await.json().await.unwrap();
    assert_eq!(v["switched"], 4, "{v}");
    let v: Value = post(&app, "/v1/gallery/models/prune", json!({})).await.json().await.unwrap();
    assert_eq!(v, json!({"deleted": 4}));
    assert_eq!(models(&app).await, [("sface+dlib".to_string(), 4, 0)]);
    let v: Value = app.post_image("/v1/identify", photo("obama3.jpg"), &[]).await.json().await.unwrap();
    assert_eq!(v["faces"][0]["match"]["person_id"], obama.as_str(), "{v}");
    let log = app.get_json("/v1/audit?limit=10").await;
    let actions: Vec<&str> = log["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions[..3], ["prune_embeddings", "switch_model", "switch_model"], "{log}");
    app.stop().await;
}
