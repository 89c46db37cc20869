//! The user story end to end, and enrollments surviving a restart.
use serde_json::{Value, json};

use crate::helpers::{assert_error, config, photo, side_by_side, spawn_app, spawn_with};

#[tokio::test]
async fn enroll_verify_identify_delete() {
    let mut app = spawn_app().await;
    let obama = app.enroll("Barack Obama", "obama.jpg").await;

    let r = app.post_image("/v1/verify", photo("obama2.jpg"), &[("person_id", &obama)]).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["match"], true, "{v}");
    assert!(v["similarity"].as_f64().unwrap() > v["threshold"].as_f64().unwrap());
    assert_eq!(v["person_id"], obama.as_str());
    assert_eq!(v["compared_faces"], 1);
    assert!(v["face"]["box"]["width"].as_f64().unwrap() > 50.0);

    let r = app.post_image("/v1/verify", photo("biden.jpg"), &[("person_id", &obama)]).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["match"], false, "{v}");

    let r = app.post_image("/v1/identify", photo("obama3.jpg"), &[]).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["faces"].as_array().unwrap().len(), 1);
    assert_eq!(v["faces"][0]["match"]["person_id"], obama.as_str(), "{v}");
    assert_eq!(v["faces"][0]["match"]["name"], "Barack Obama");
    assert_eq!(v["faces"][0]["status"], "identified");
    assert_eq!(v["gallery_size"], 1);

    let r = app.post_image("/v1/identify", photo("biden.jpg"), &[]).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["faces"][0]["match"], Value::Null, "{v}");
    assert_eq!(v["faces"][0]["status"], "unknown");
    // The nearest candidate is still reported, but not forced as a match.
    assert_eq!(v["faces"][0]["candidates"][0]["person_id"], obama.as_str());

    let r = app.client.delete(app.url(&format!("/v1/persons/{obama}"))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = app.post_image("/v1/identify", photo("obama3.jpg"), &[]).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["faces"][0]["status"], "unknown", "{v}");
    assert_eq!(v["gallery_size"], 0);
    let r = app.client.get(app.url(&format!("/v1/persons/{obama}"))).send().await.unwrap();
    assert_error(r, 404, "person_not_found").await;
    app.stop().await;
}

#[tokio::test]
async fn one_person_is_not_assigned_to_two_faces_of_one_photo() {
    let mut app = spawn_app().await;
    let obama = app.enroll("Barack Obama", "obama.jpg").await;
    // Two different photos of the same man side by side.
    let r = app.post_raw("/v1/identify", side_by_side("obama2.jpg", "obama3.jpg"), "image/png").await;
    let v: Value = r.json().await.unwrap();
    let faces = v["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 2, "{v}");
    let matched: Vec<&Value> = faces.iter().filter(|f| f["match"]["person_id"] == obama.as_str()).collect();
    assert_eq!(matched.len(), 1, "{v}");
    // Both faces still list him as a candidate.
    assert!(faces.iter().all(|f| f["candidates"][0]["person_id"] == obama.as_str()));
    app.stop().await;
}

#[tokio::test]
async fn enrollments_survive_a_restart() {
    let mut app = spawn_app().await;
    let obama = app.enroll("Barack Obama", "obama.jpg").await;
    let r = app
        .client
        .patch(app.url(&format!("/v1/persons/{obama}")))
        .json(&json!({"metadata": {"team": "blue"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let db = app.db.clone();
    let _dir = app.keep_dir();
    app.stop().await;

    let app = spawn_with(config(&db)).await;
    let v: Value = app.get_json("/v1/info").await;
    assert_eq!(v["gallery"]["faces"], 1);
    let r = app.post_image("/v1/identify", photo("obama2.jpg"), &[]).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["faces"][0]["match"]["person_id"], obama.as_str(), "{v}");
    let p: Value = app.get_json(&format!("/v1/persons/{obama}")).await;
    assert_eq!(p["metadata"]["team"], "blue");
    assert_eq!(p["faces"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn an_online_backup_restores_every_person_and_face() {
    let dir = crate::helpers::temp_dir();
    let mut app = crate::helpers::spawn_with(crate::helpers::config(&dir.path().join("visage.db"))).await;
    let obama = app.enroll("Barack Obama", "obama.jpg").await;
    let biden = app.enroll("Joe Biden", "biden.jpg").await;
    // Taken while the service runs, through a second connection as `visage backup` does.
    let store = visage_service::store::Store::open(&app.db).await.unwrap();
    let copy = dir.path().join("backup.db");
    store.backup(&copy).await.unwrap();
    assert!(store.backup(&copy).await.is_err(), "never overwrites");
    store.close().await;
    app.stop().await;
    // Restore: the copy alone serves the same gallery.
    let restored = crate::helpers::spawn_with(crate::helpers::config(&copy)).await;
    let info = restored.get_json("/v1/info").await;
    assert_eq!((info["gallery"]["persons"].as_u64(), info["gallery"]["faces"].as_u64()), (Some(2), Some(2)));
    let r = restored.post_image("/v1/identify", crate::helpers::photo("obama2.jpg"), &[]).await;
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["faces"][0]["match"]["person_id"], obama.as_str());
    let check = visage_service::store::Store::open(&copy).await.unwrap();
    assert_eq!(check.integrity_check().await.unwrap(), "ok");
    assert!(check.get_person(&biden).await.unwrap().is_some());
    check.close().await;
    restored.stop().await;
}
