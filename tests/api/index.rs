//! The approximate index (`--index ann`): searched like the exact one, saved
//! in the index folder at shutdown, reopened at start-up and caught up with
//! what changed while the service was down; a damaged save is built again.
//! `--index auto` picks by gallery size.
use serde_json::Value;
use visage_service::gallery::IndexKind;
use visage_service::server::Config;

use crate::helpers::{TestApp, config, fresh_db, photo, spawn_with, temp_dir};

fn ann(db: &std::path::Path, dir: &std::path::Path) -> Config {
    let mut c = config(db);
    c.service.index.kind = IndexKind::Ann;
    c.service.index_dir = Some(dir.to_path_buf());
    c
}

async fn identify(app: &TestApp, name: &str) -> Value {
    let v: Value = app.post_image("/v1/identify", photo(name), &[]).await.json().await.unwrap();
    v["faces"][0].clone()
}

async fn gallery(app: &TestApp) -> Value {
    app.get_json("/v1/info").await["gallery"].clone()
}

#[tokio::test]
async fn the_graph_is_saved_reopened_and_caught_up_with_changes_made_meanwhile() {
    let dir = temp_dir();
    let db = fresh_db(&dir);
    let saved = dir.path().join("graph");
    let mut app = spawn_with(ann(&db, &saved)).await;
    let g = gallery(&app).await;
    assert_eq!((g["index"].as_str(), g["index_reopened"].as_bool()), (Some("ann"), Some(false)), "{g}");
    let obama = app.enroll("Barack Obama", "obama.jpg").await;
    let biden = app.enroll("Joe Biden", "biden.jpg").await;
    let face = identify(&app, "obama2.jpg").await;
    assert_eq!(face["status"], "identified", "{face}");
    assert_eq!(face["match"]["person_id"], obama.as_str());
    app.stop().await;
    assert!(saved.join("gallery.meta").exists(), "saved at shutdown");

    // Meanwhile another process (an exact service on the same database)
    // deletes one person and adds a face to the other.
    let mut other = spawn_with(config(&db)).await;
    assert_eq!(other.client.delete(other.url(&format!("/v1/persons/{biden}"))).send().await.unwrap().status(), 204);
    let r = other.post_raw(&format!("/v1/persons/{obama}/faces"), photo("obama3.jpg"), "image/jpeg").await;
    assert_eq!(r.status(), 201);
    other.person_ids.clear();
    other.stop().await;

    let app = spawn_with(ann(&db, &saved)).await;
    let g = gallery(&app).await;
    assert_eq!(
        (g["index_reopened"].as_bool(), g["faces"].as_u64(), g["persons"].as_u64()),
        (Some(true), Some(2), Some(1)),
        "{g}"
    );
    assert_eq!(identify(&app, "biden.jpg").await["status"], "unknown");
    let face = identify(&app, "obama3.jpg").await;
    assert_eq!(face["match"]["person_id"], obama.as_str());
    assert!(face["match"]["similarity"].as_f64().unwrap() > 0.99, "the new face itself: {face}");
    app.stop().await;

    // A damaged save is not trusted: the graph is built again from the store.
    std::fs::write(saved.join("gallery.meta"), b"VISAGEGX garbage").unwrap();
    let app = spawn_with(ann(&db, &saved)).await;
    let g = gallery(&app).await;
    assert_eq!((g["index_reopened"].as_bool(), g["faces"].as_u64()), (Some(false), Some(2)), "{g}");
    assert_eq!(identify(&app, "obama2.jpg").await["match"]["person_id"], obama.as_str());
    app.stop().await;
    // ...and saved again, whole.
    let app = spawn_with(ann(&db, &saved)).await;
    assert_eq!(gallery(&app).await["index_reopened"], true);
    app.stop().await;
}

#[tokio::test]
async fn auto_searches_small_galleries_exactly_and_large_ones_with_the_graph() {
    let dir = temp_dir();
    let db = fresh_db(&dir);
    let mut app = spawn_with(config(&db)).await;
    app.enroll("Barack Obama", "obama.jpg").await;
    app.enroll("Joe Biden", "biden.jpg").await;
    app.stop().await;
    for (most_exact, kind) in [(2, "exact"), (1, "ann")] {
        let mut c = ann(&db, &dir.path().join("graph"));
        c.service.index.kind = IndexKind::Auto;
        c.service.index.auto_exact_max = most_exact;
        let app = spawn_with(c).await;
        assert_eq!(gallery(&app).await["index"], kind);
        assert_eq!(identify(&app, "obama2.jpg").await["status"], "identified");
        app.stop().await;
    }
}
