//! Person management and face enrollment rules.
use serde_json::{Value, json};

use crate::helpers::{assert_error, noise_png, photo, side_by_side, spawn_app};

#[tokio::test]
async fn create_list_show_update_delete_persons() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for name in ["Ada", "Grace", "Edsger"] {
        let r = app.client.post(app.url("/v1/persons")).json(&json!({"name": name})).send().await.unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["name"], name);
        assert_eq!(v["face_count"], 0);
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    // Pagination: two, then the rest.
    let v: Value = app.get_json("/v1/persons?limit=2").await;
    assert_eq!(v["persons"].as_array().unwrap().len(), 2);
    let cursor = v["next_cursor"].as_str().unwrap().to_string();
    let v: Value = app.get_json(&format!("/v1/persons?limit=2&cursor={cursor}")).await;
    assert_eq!(v["persons"].as_array().unwrap().len(), 1);
    assert_eq!(v["persons"][0]["name"], "Edsger");
    assert_eq!(v["next_cursor"], Value::Null);

    let url = app.url(&format!("/v1/persons/{}", ids[0]));
    let r =
        app.client.patch(&url).json(&json!({"name": "Ada Lovelace", "metadata": {"born": 1815}})).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!((v["name"].as_str(), v["metadata"]["born"].as_i64()), (Some("Ada Lovelace"), Some(1815)));
    let r = app.client.patch(&url).json(&json!({"metadata": null})).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!((v["name"].as_str(), &v["metadata"]), (Some("Ada Lovelace"), &Value::Null));
    let v: Value = app.client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["faces"], json!([]));

    assert_eq!(app.client.delete(&url).send().await.unwrap().status(), 204);
    assert_error(app.client.delete(&url).send().await.unwrap(), 404, "person_not_found").await;
    assert_error(app.client.patch(&url).json(&json!({"name": "x"})).send().await.unwrap(), 404, "person_not_found")
        .await;
    app.stop().await;
}

#[tokio::test]
async fn person_input_is_validated() {
    let app = spawn_app().await;
    let post = |body: Value| app.client.post(app.url("/v1/persons")).json(&body).send();
    assert_error(post(json!({"name": "  "})).await.unwrap(), 400, "invalid_parameter").await;
    assert_error(post(json!({"name": "x".repeat(10_000)})).await.unwrap(), 400, "invalid_parameter").await;
    assert_error(post(json!({"name": "a", "metadata": [1, 2]})).await.unwrap(), 400, "invalid_parameter").await;
    assert_error(post(json!({"nom": "a"})).await.unwrap(), 400, "invalid_json").await;
    // SQL metacharacters are just characters.
    let r = post(json!({"name": "Robert'); DROP TABLE persons;--"})).await.unwrap();
    assert_eq!(r.status(), 201);
    let r = app.post_raw("/v1/persons", b"{not json".to_vec(), "application/json").await;
    assert_error(r, 400, "invalid_json").await;
    let r = app.post_raw("/v1/persons", b"name=a".to_vec(), "text/plain").await;
    assert_error(r, 415, "unsupported_media_type").await;
    for bad in ["/v1/persons/../../etc/passwd", "/v1/persons/nope", "/v1/persons/0123456789abcdef0123456789abcdef"] {
        let r = app.client.get(app.url(bad)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{bad}");
    }
    assert_error(app.client.get(app.url("/v1/persons?limit=0")).send().await.unwrap(), 400, "invalid_parameter").await;
    assert_error(app.client.get(app.url("/v1/persons?cursor=zzz")).send().await.unwrap(), 400, "invalid_parameter")
        .await;
    app.stop().await;
}

#[tokio::test]
async fn faces_are_enrolled_listed_and_deleted() {
    let mut app = spawn_app().await;
    let id = app.enroll("Barack Obama", "obama.jpg").await;
    // A second photo, as a raw body.
    let r = app.post_raw(&format!("/v1/persons/{id}/faces"), photo("obama2.jpg"), "image/jpeg").await;
    assert_eq!(r.status(), 201);
    let face: Value = r.json().await.unwrap();
    assert_eq!(face["person_id"], id.as_str());
    assert_eq!(face["landmarks"].as_array().unwrap().len(), 5);
    assert!(face["score"].as_f64().unwrap() > 0.9);
    assert!(face["quality"]["sharpness"].as_f64().unwrap() > 0.0);
    let face_id = face["id"].as_str().unwrap().to_string();

    let v: Value = app.get_json(&format!("/v1/persons/{id}")).await;
    assert_eq!(v["face_count"], 2);
    assert_eq!(v["faces"].as_array().unwrap().len(), 2);
    assert!(v["faces"][0].get("embedding").is_none(), "embeddings are not handed out here");
    let v: Value = app.post_image("/v1/verify", photo("obama3.jpg"), &[("person_id", &id)]).await.json().await.unwrap();
    assert_eq!(v["compared_faces"], 2);

    let url = app.url(&format!("/v1/persons/{id}/faces/{face_id}"));
    assert_eq!(app.client.delete(&url).send().await.unwrap().status(), 204);
    assert_error(app.client.delete(&url).send().await.unwrap(), 404, "face_not_found").await;
    let v: Value = app.get_json("/v1/info").await;
    assert_eq!(v["gallery"]["faces"], 1);
    app.stop().await;
}

#[tokio::test]
async fn enrollment_needs_exactly_one_usable_face() {
    let mut app = spawn_app().await;
    let r = app.post_image("/v1/enroll", noise_png(400, 300), &[("name", "Nobody")]).await;
    assert_error(r, 422, "no_face").await;
    let two = side_by_side("obama.jpg", "biden.jpg");
    let r = app.post_image("/v1/enroll", two.clone(), &[("name", "Two")]).await;
    let v = assert_error(r, 422, "multiple_faces").await;
    assert!(v["error"]["message"].as_str().unwrap().contains("face=largest"));
    // Nothing was created by the refused attempts.
    let v: Value = app.get_json("/v1/persons").await;
    assert_eq!(v["persons"], json!([]));
    let r = app.post_image("/v1/enroll?face=largest", two, &[("name", "Largest")]).await;
    assert_eq!(r.status(), 201);
    // A tiny face is refused with a reason.
    let small = {
        let img = image::load_from_memory(&photo("obama.jpg")).unwrap().to_rgb8();
        crate::helpers::png(&image::imageops::resize(&img, 120, 150, image::imageops::FilterType::Triangle))
    };
    let r = app.post_image("/v1/enroll", small, &[("name", "Small")]).await;
    assert_error(r, 422, "face_too_small").await;
    let blurry = {
        let img = image::load_from_memory(&photo("obama.jpg")).unwrap().to_rgb8();
        crate::helpers::png(&image::imageops::blur(&img, 8.0))
    };
    let r = app.post_image("/v1/enroll", blurry, &[("name", "Blurry")]).await;
    assert_error(r, 422, "face_too_blurry").await;
    // Adding to a person who does not exist.
    let r =
        app.post_image("/v1/enroll", photo("obama.jpg"), &[("person_id", "0123456789abcdef0123456789abcdef")]).await;
    assert_error(r, 404, "person_not_found").await;
    let r = app.post_image("/v1/enroll", photo("obama.jpg"), &[]).await;
    assert_error(r, 400, "invalid_parameter").await;
    let _ = app.enroll("Biden", "biden.jpg").await;
    app.stop().await;
}
