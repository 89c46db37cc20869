//! Faces nobody has named yet, over HTTP: kept unassigned, grouped into
//! clusters, named, moved, merged, found by similarity, remembered by
//! identify, and deleted by the retention.
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, config, fresh_db, photo, side_by_side, spawn_app, spawn_with, temp_dir};

async fn keep(app: &TestApp, name: &str, fields: &[(&str, &str)]) -> Value {
    let r = app.post_image("/v1/faces", photo(name), fields).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    r.json().await.unwrap()
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_string()).collect()
}

async fn identify_status(app: &TestApp, name: &str) -> Value {
    let r = app.post_image("/v1/identify", photo(name), &[]).await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["faces"][0].clone()
}

#[tokio::test]
async fn kept_faces_group_into_clusters_and_a_named_cluster_is_identified() {
    let app = spawn_app().await;
    let mut obama = Vec::new();
    for (i, name) in ["obama.jpg", "obama2.jpg", "obama3.jpg"].iter().enumerate() {
        let kept = keep(&app, name, &[("external_id", &format!("cam/{i}.jpg"))]).await;
        assert_eq!(kept["refused"], json!([]));
        let face = &kept["faces"][0];
        assert_eq!(
            (face["person_id"].clone(), face["external_id"].clone()),
            (Value::Null, json!(format!("cam/{i}.jpg")))
        );
        obama.push(face["id"].as_str().unwrap().to_string());
    }
    let biden = keep(&app, "biden.jpg", &[]).await["faces"][0]["id"].as_str().unwrap().to_string();
    // Unassigned faces never answer identify as a person.
    assert_eq!(identify_status(&app, "obama.jpg").await["status"], "unknown");
    let page = app.get_json("/v1/clusters?min_size=2").await;
    let clusters = page["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 1, "{page}");
    let cluster = &clusters[0];
    let mut members = ids(&cluster["faces"]);
    members.sort();
    let mut expected = obama.clone();
    expected.sort();
    assert_eq!(members, expected, "the three photos of one man are one cluster");
    assert_eq!(cluster["size"], 3);
    assert!(cluster["cohesion"].as_f64().unwrap() > 0.75, "{cluster}");
    assert!(obama.contains(&cluster["representative"]["id"].as_str().unwrap().to_string()));
    assert_eq!(cluster["nearest_person"], Value::Null);
    assert!(
        cluster["faces"].as_array().unwrap().iter().all(|f| f["external_id"].as_str().unwrap().starts_with("cam/"))
    );
    let all = app.get_json("/v1/clusters?min_size=1").await;
    assert_eq!(all["clusters"].as_array().unwrap().len(), 2);
    assert_eq!(all["clusters"][1]["faces"][0]["id"], biden.as_str(), "largest first");
    // Paging: one cluster a page, then the next, then none.
    let first = app.get_json("/v1/clusters?min_size=1&limit=1").await;
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let second = app.get_json(&format!("/v1/clusters?min_size=1&limit=1&cursor={cursor}")).await;
    assert_eq!(second["clusters"][0]["faces"][0]["id"], biden.as_str());
    assert_eq!(second["next_cursor"], Value::Null);
    // Named: every face moves, and the next photo is identified.
    let id = cluster["id"].as_str().unwrap();
    let named = app.post_json(&format!("/v1/clusters/{id}/assign"), &json!({"name": "Barack Obama"})).await;
    assert_eq!(named["faces"].as_array().unwrap().len(), 3, "{named}");
    assert_eq!(named["created_person"], true);
    let person = named["person_id"].as_str().unwrap().to_string();
    let face = identify_status(&app, "obama2.jpg").await;
    assert_eq!((face["status"].clone(), face["match"]["person_id"].clone()), (json!("identified"), json!(person)));
    let r = app
        .client
        .post(app.url(&format!("/v1/clusters/{id}/assign")))
        .json(&json!({"name": "Again"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "cluster_not_found").await;
    // Only Biden is left unassigned; the named faces show their person.
    let faces = app.get_json("/v1/faces?unassigned=true").await;
    assert_eq!(ids(&faces["faces"]), vec![biden.clone()]);
    let shown = app.get_json(&format!("/v1/faces/{}", obama[0])).await;
    assert_eq!((shown["person_id"].clone(), shown["cluster_id"].clone()), (json!(person), Value::Null));
    // Biden's cluster now suggests no one; moved to Obama's person, then back out.
    let moved: Value = app
        .client
        .patch(app.url(&format!("/v1/faces/{biden}")))
        .json(&json!({"person_id": person}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(moved["person_id"], person.as_str());
    assert_eq!(app.get_json(&format!("/v1/persons/{person}")).await["faces"].as_array().unwrap().len(), 4);
    let out: Value = app
        .client
        .patch(app.url(&format!("/v1/faces/{biden}")))
        .json(&json!({"person_id": null}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(out["person_id"], Value::Null);
    assert!(out["cluster_id"].is_string());
    assert_eq!(app.get_json("/v1/clusters?min_size=1").await["clusters"].as_array().unwrap().len(), 1);
    // Delete means delete.
    assert_eq!(app.client.delete(app.url(&format!("/v1/faces/{biden}"))).send().await.unwrap().status(), 204);
    assert_error(app.client.get(app.url(&format!("/v1/faces/{biden}"))).send().await.unwrap(), 404, "face_not_found")
        .await;
    assert_eq!(app.get_json("/v1/clusters?min_size=1").await["clusters"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn a_cluster_of_an_enrolled_person_suggests_them_and_joins_them_by_id() {
    let mut app = spawn_app().await;
    let person = app.enroll("Barack Obama", "obama.jpg").await;
    keep(&app, "obama2.jpg", &[]).await;
    keep(&app, "obama3.jpg", &[]).await;
    let page = app.get_json("/v1/clusters").await;
    let cluster = &page["clusters"][0];
    assert_eq!(cluster["nearest_person"]["id"], person.as_str(), "{page}");
    assert_eq!(cluster["nearest_person"]["name"], "Barack Obama");
    let id = cluster["id"].as_str().unwrap();
    let named = app.post_json(&format!("/v1/clusters/{id}/assign"), &json!({"person_id": person})).await;
    assert_eq!((named["person_id"].clone(), named["created_person"].clone()), (json!(person), json!(false)));
    assert_eq!(app.get_json(&format!("/v1/persons/{person}")).await["faces"].as_array().unwrap().len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn every_face_of_a_group_photo_is_kept_unless_asked_otherwise() {
    let app = spawn_app().await;
    let two = side_by_side("obama.jpg", "biden.jpg");
    let r = app.post_image("/v1/faces", two.clone(), &[]).await;
    assert_eq!(r.status(), 201);
    let kept: Value = r.json().await.unwrap();
    assert_eq!(kept["faces"].as_array().unwrap().len(), 2, "{kept}");
    let r = app.post_image("/v1/faces", two.clone(), &[("face", "largest")]).await;
    assert_eq!(r.json::<Value>().await.unwrap()["faces"].as_array().unwrap().len(), 1);
    assert_error(app.post_image("/v1/faces", two, &[("face", "single")]).await, 422, "multiple_faces").await;
    assert_error(app.post_image("/v1/faces", photo("obama.jpg"), &[("face", "every")]).await, 400, "invalid_parameter")
        .await;
    let long = "x".repeat(201);
    let v = assert_error(
        app.post_image("/v1/faces", photo("obama.jpg"), &[("external_id", &long)]).await,
        400,
        "invalid_parameter",
    )
    .await;
    assert_eq!(v["error"]["param"], "external_id");
    app.stop().await;
}

#[tokio::test]
async fn persons_merge_into_one_and_never_into_themselves() {
    let mut app = spawn_app().await;
    let a = app.enroll("Obama", "obama.jpg").await;
    let b = app.enroll("Obama again", "obama2.jpg").await;
    let merged = app.post_json(&format!("/v1/persons/{a}/merge"), &json!({"from": [b]})).await;
    assert_eq!(merged["persons_deleted"], json!([b]));
    assert_eq!(merged["faces_moved"].as_array().unwrap().len(), 1);
    assert_error(app.client.get(app.url(&format!("/v1/persons/{b}"))).send().await.unwrap(), 404, "person_not_found")
        .await;
    assert_eq!(identify_status(&app, "obama3.jpg").await["match"]["person_id"], a.as_str());
    let r =
        app.client.post(app.url(&format!("/v1/persons/{a}/merge"))).json(&json!({"from": [a]})).send().await.unwrap();
    assert_error(r, 400, "invalid_parameter").await;
    let r =
        app.client.post(app.url(&format!("/v1/persons/{a}/merge"))).json(&json!({"from": [b]})).send().await.unwrap();
    assert_error(r, 404, "person_not_found").await;
    app.stop().await;
}

#[tokio::test]
async fn search_finds_stored_faces_by_face_photo_or_embedding() {
    let mut app = spawn_app().await;
    let person = app.enroll("Obama", "obama.jpg").await;
    let kept =
        keep(&app, "obama2.jpg", &[("external_id", "two")]).await["faces"][0]["id"].as_str().unwrap().to_string();
    keep(&app, "biden.jpg", &[]).await;
    let found = app.post_json("/v1/search", &json!({"face_id": kept, "top_k": 2})).await;
    let results = found["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{found}");
    assert_eq!((results[0]["face_id"].clone(), results[0]["external_id"].clone()), (json!(kept), json!("two")));
    assert!(results[0]["similarity"].as_f64().unwrap() > 0.99);
    assert_eq!(results[1]["person_id"], person.as_str(), "the enrolled photo of the same man comes next");
    let only = app.post_json("/v1/search", &json!({"face_id": kept, "unassigned": true})).await;
    assert!(only["results"].as_array().unwrap().iter().all(|r| r["person_id"].is_null()));
    let by_photo = app.post_image("/v1/search", photo("obama3.jpg"), &[("top_k", "1")]).await;
    let best = by_photo.json::<Value>().await.unwrap()["results"][0].clone();
    assert!(best["similarity"].as_f64().unwrap() > 0.5, "another photo of the same man is found first: {best}");
    let embedded: Value = app.post_image("/v1/embed", photo("obama3.jpg"), &[]).await.json().await.unwrap();
    let e = &embedded["faces"][0];
    let by_value =
        app.post_json("/v1/search", &json!({"embedding": e["embedding"], "model": e["model"], "top_k": 1})).await;
    assert_eq!(by_value["results"].as_array().unwrap().len(), 1);
    let wrong = app
        .client
        .post(app.url("/v1/search"))
        .json(&json!({"embedding": e["embedding"], "model": "other@sha256:00"}))
        .send()
        .await
        .unwrap();
    assert_error(wrong, 422, "model_mismatch").await;
    let short = app
        .client
        .post(app.url("/v1/search"))
        .json(&json!({"embedding": [1.0, 0.0], "model": e["model"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error(short, 400, "invalid_parameter").await["error"]["param"], "embedding");
    let none = app.client.post(app.url("/v1/search")).json(&json!({"top_k": 3})).send().await.unwrap();
    assert_error(none, 400, "invalid_parameter").await;
    let absent = app
        .client
        .post(app.url("/v1/search"))
        .json(&json!({"face_id": "01a2224222ec71bdb9d7a84b8110f255"}))
        .send()
        .await
        .unwrap();
    assert_error(absent, 404, "face_not_found").await;
    app.stop().await;
}

#[tokio::test]
async fn identify_remembers_unknown_faces_only_when_the_service_allows_it() {
    let app = spawn_app().await;
    let r = app.post_image("/v1/identify", photo("biden.jpg"), &[("remember", "unknown")]).await;
    assert_error(r, 409, "remember_disabled").await;
    app.stop().await;

    let dir = temp_dir();
    let mut c = config(&fresh_db(&dir));
    c.service.remember_unknown = true;
    c.service.keep_crops = true;
    let mut app = spawn_with(c).await;
    app.enroll("Obama", "obama.jpg").await;
    let two = side_by_side("obama2.jpg", "biden.jpg");
    let r = app.post_image("/v1/identify", two, &[("remember", "unknown")]).await;
    let answer: Value = r.json().await.unwrap();
    let faces = answer["faces"].as_array().unwrap();
    let named: Vec<&Value> = faces.iter().filter(|f| f["status"] == "identified").collect();
    let unknown: Vec<&Value> = faces.iter().filter(|f| f["status"] == "unknown").collect();
    assert_eq!((named.len(), unknown.len()), (1, 1), "{answer}");
    assert_eq!(named[0]["remembered_face_id"], Value::Null, "a named face is not kept");
    let kept = unknown[0]["remembered_face_id"].as_str().expect("the unknown face is kept").to_string();
    let face = app.get_json(&format!("/v1/faces/{kept}")).await;
    assert_eq!(face["person_id"], Value::Null);
    let crop = app.client.get(app.url(&format!("/v1/faces/{kept}/crop"))).send().await.unwrap();
    assert_eq!(crop.headers()["content-type"], "image/png");
    assert_eq!(&crop.bytes().await.unwrap()[..4], b"\x89PNG");
    let log = app.get_json("/v1/audit?limit=5").await;
    assert!(
        log["entries"].as_array().unwrap().iter().any(|e| e["action"] == "keep_face" && e["subject"] == kept.as_str()),
        "{log}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_retention_deletes_old_unassigned_faces_and_never_enrolled_ones() {
    let dir = temp_dir();
    let mut c = config(&fresh_db(&dir));
    c.service.unassigned_ttl = Some(std::time::Duration::from_secs(2));
    let mut app = spawn_with(c).await;
    let person = app.enroll("Obama", "obama.jpg").await;
    let kept = keep(&app, "biden.jpg", &[]).await["faces"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(app.client.get(app.url(&format!("/v1/faces/{kept}"))).send().await.unwrap().status(), 200);
    let mut gone = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        if app.client.get(app.url(&format!("/v1/faces/{kept}"))).send().await.unwrap().status() == 404 {
            gone = true;
            break;
        }
    }
    assert!(gone, "the unassigned face outlived its retention");
    // The clusters in memory follow the store's purge a moment later (a
    // background write has no answer to wait for).
    let mut clusters = json!(null);
    for _ in 0..50 {
        clusters = app.get_json("/v1/clusters?min_size=1").await["clusters"].clone();
        if clusters == json!([]) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(clusters, json!([]), "the clusters kept a purged face");
    assert_eq!(app.get_json(&format!("/v1/persons/{person}")).await["faces"].as_array().unwrap().len(), 1);
    let log = app.get_json("/v1/audit?limit=10").await;
    assert!(
        log["entries"].as_array().unwrap().iter().any(|e| e["action"] == "purge_face" && e["actor"] == "ttl"),
        "{log}"
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_ids_and_bodies_get_their_codes() {
    let app = spawn_app().await;
    let missing = "01a2224222ec71bdb9d7a84b8110f255";
    for (method, path, code) in [
        ("GET", format!("/v1/faces/{missing}"), "face_not_found"),
        ("GET", "/v1/faces/nope".to_string(), "face_not_found"),
        ("DELETE", format!("/v1/faces/{missing}"), "face_not_found"),
        ("GET", format!("/v1/faces/{missing}/crop"), "face_not_found"),
    ] {
        let r = app.client.request(method.parse().unwrap(), app.url(&path)).send().await.unwrap();
        assert_error(r, 404, code).await;
    }
    let r = app
        .client
        .post(app.url(&format!("/v1/clusters/{missing}/assign")))
        .json(&json!({"name": "X"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "cluster_not_found").await;
    let r = app.client.post(app.url(&format!("/v1/clusters/{missing}/assign"))).json(&json!({})).send().await.unwrap();
    assert_error(r, 400, "invalid_parameter").await;
    let r = app
        .client
        .patch(app.url(&format!("/v1/faces/{missing}")))
        .json(&json!({"person_id": null}))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "face_not_found").await;
    assert_error(app.client.get(app.url("/v1/clusters?min_size=0")).send().await.unwrap(), 400, "invalid_parameter")
        .await;
    assert_error(app.client.get(app.url("/v1/clusters?cursor=x")).send().await.unwrap(), 400, "invalid_parameter")
        .await;
    assert_error(app.client.get(app.url("/v1/faces?unassigned=false")).send().await.unwrap(), 400, "invalid_parameter")
        .await;
    let kept = keep(&app, "obama.jpg", &[]).await["faces"][0]["id"].as_str().unwrap().to_string();
    assert_error(
        app.client.get(app.url(&format!("/v1/faces/{kept}/crop"))).send().await.unwrap(),
        404,
        "crop_not_found",
    )
    .await;
    let r = app
        .client
        .patch(app.url(&format!("/v1/faces/{kept}")))
        .json(&json!({"person_id": missing}))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "person_not_found").await;
    app.stop().await;
}
