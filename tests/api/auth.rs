//! Access control: keys, scopes, 401/403, open health checks, and the refusal
//! to serve a non-loopback address without keys.
use reqwest::StatusCode;
use serde_json::json;
use visage_service::domain::Scope;
use visage_service::store::Store;

use crate::helpers::{assert_error, config, photo, spawn_with, temp_dir};

/// A fresh database holding one key of each scope; returns (its folder, db,
/// [admin, enroll, match]).
async fn keyed_db() -> (tempfile::TempDir, std::path::PathBuf, [String; 3]) {
    let dir = temp_dir();
    let db = crate::helpers::fresh_db(&dir);
    let keys = keys_in(&db).await;
    (dir, db, keys)
}

/// One key of each scope in the database `db`: [admin, enroll, match].
pub async fn keys_in(db: &std::path::Path) -> [String; 3] {
    use secrecy::ExposeSecret;
    let store = Store::open(db).await.unwrap();
    let mut keys = Vec::new();
    for scope in [Scope::Admin, Scope::Enroll, Scope::Match] {
        keys.push(
            store
                .create_key(&format!("{scope:?} client"), scope, "cli")
                .await
                .unwrap()
                .secret
                .expose_secret()
                .to_string(),
        );
    }
    store.close().await;
    keys.try_into().unwrap()
}

#[tokio::test]
async fn keys_and_scopes_gate_every_route_but_health() {
    let (_dir, db, [admin, enroll, matcher]) = keyed_db().await;
    let app = spawn_with(config(&db)).await;
    let c = &app.client;
    // Health stays open.
    for path in ["/healthz", "/readyz"] {
        assert_eq!(c.get(app.url(path)).send().await.unwrap().status(), StatusCode::OK, "{path}");
    }
    // No key, a wrong key, a malformed header: 401 with a Bearer challenge.
    let r = c.get(app.url("/v1/info")).send().await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_error(r, 401, "unauthorized").await;
    let forged = format!("{}x", &matcher[..matcher.len() - 1]);
    for bad in
        [format!("Bearer {forged}"), "Bearer vsk_0000000000000000_nope".into(), "Basic abc".into(), matcher.clone()]
    {
        let r = c.get(app.url("/v1/info")).header("authorization", &bad).send().await.unwrap();
        let body = assert_error(r, 401, "unauthorized").await.to_string();
        // Errors never echo what was presented.
        assert!(!body.contains(&forged[21..]) && !body.contains(&matcher[21..]), "{body}");
    }
    // match: may match, may not enroll or manage.
    let r = c.get(app.url("/v1/info")).bearer_auth(&matcher).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .post(app.url("/v1/detect"))
        .bearer_auth(&matcher)
        .header("content-type", "image/jpeg")
        .body(photo("obama.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let enroll_form = || {
        reqwest::multipart::Form::new()
            .text("name", "Barack Obama")
            .part("image", reqwest::multipart::Part::bytes(photo("obama.jpg")).file_name("o.jpg"))
    };
    let r = c.post(app.url("/v1/enroll")).bearer_auth(&matcher).multipart(enroll_form()).send().await.unwrap();
    let body = assert_error(r, 403, "forbidden").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("needs enroll"));
    // enroll: may enroll, may not list or delete persons.
    let r = c.post(app.url("/v1/enroll")).bearer_auth(&enroll).multipart(enroll_form()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let person = r.json::<serde_json::Value>().await.unwrap()["person_id"].as_str().unwrap().to_string();
    assert_error(c.get(app.url("/v1/persons")).bearer_auth(&enroll).send().await.unwrap(), 403, "forbidden").await;
    let r = c.delete(app.url(&format!("/v1/persons/{person}"))).bearer_auth(&enroll).send().await.unwrap();
    assert_error(r, 403, "forbidden").await;
    assert_error(c.get(app.url("/v1/keys")).bearer_auth(&enroll).send().await.unwrap(), 403, "forbidden").await;
    // admin: everything.
    let r = c.get(app.url("/v1/persons")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c.delete(app.url(&format!("/v1/persons/{person}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    app.stop().await;
}

#[tokio::test]
async fn admins_create_list_and_revoke_keys_over_http_and_secrets_stay_secret() {
    let (_dir, db, [admin, _, _]) = keyed_db().await;
    let app = spawn_with(config(&db)).await;
    let c = &app.client;
    let r = c
        .post(app.url("/v1/keys"))
        .bearer_auth(&admin)
        .json(&json!({"name": "kiosk 3", "scope": "match"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: serde_json::Value = r.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(key.starts_with(&format!("vsk_{id}_")));
    assert_eq!(created["scope"], "match");
    // The new key works at once, within its scope.
    assert_eq!(c.get(app.url("/v1/info")).bearer_auth(&key).send().await.unwrap().status(), StatusCode::OK);
    // Lists never show secrets; the database holds only hashes.
    let list = c.get(app.url("/v1/keys")).bearer_auth(&admin).send().await.unwrap().text().await.unwrap();
    assert!(list.contains(&id) && !list.contains(&key[21..]), "{list}");
    let (raw, wal) = if crate::pg::selected() {
        // Every key row as PostgreSQL prints it (the hash in hex, too).
        let pool = sqlx::PgPool::connect(db.to_str().unwrap()).await.unwrap();
        let rows: Vec<String> = sqlx::query_scalar("SELECT t::text FROM api_keys t").fetch_all(&pool).await.unwrap();
        pool.close().await;
        (rows.concat().into_bytes(), Vec::new())
    } else {
        (std::fs::read(&db).unwrap(), std::fs::read(db.with_extension("db-wal")).unwrap_or_default())
    };
    let secret = &key.as_bytes()[21..];
    for bytes in [&raw, &wal] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret), "the secret is in the database file");
    }
    // Bad requests.
    let r = c.post(app.url("/v1/keys")).bearer_auth(&admin).json(&json!({"name": "x", "scope": "root"})).send().await;
    let body = assert_error(r.unwrap(), 400, "invalid_parameter").await;
    assert_eq!(body["error"]["param"], "scope", "{body}");
    let r =
        c.post(app.url("/v1/keys")).bearer_auth(&admin).json(&json!({"name": "x", "scope": "admin", "x": 1})).send();
    assert_error(r.await.unwrap(), 400, "invalid_json").await;
    let r = c.post(app.url("/v1/keys")).bearer_auth(&admin).json(&json!(["x", "admin"])).send().await;
    assert_error(r.unwrap(), 400, "invalid_json").await;
    // Revoked: 401 from then on; revoking twice is 404.
    let r = c.delete(app.url(&format!("/v1/keys/{id}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_error(c.get(app.url("/v1/info")).bearer_auth(&key).send().await.unwrap(), 401, "unauthorized").await;
    let r = c.delete(app.url(&format!("/v1/keys/{id}"))).bearer_auth(&admin).send().await.unwrap();
    assert_error(r, 404, "key_not_found").await;
    app.stop().await;
}

#[tokio::test]
async fn loopback_without_keys_is_open_until_the_first_key() {
    let dir = temp_dir();
    let db = crate::helpers::fresh_db(&dir);
    let app = spawn_with(config(&db)).await;
    let c = &app.client;
    assert_eq!(c.get(app.url("/v1/info")).send().await.unwrap().status(), StatusCode::OK);
    // A key created while the service runs (as `visage keys create` does)
    // closes it: at once on SQLite, within a second where replicas follow
    // the change log (PostgreSQL).
    let store = Store::open(&db).await.unwrap();
    store.create_key("ops", Scope::Admin, "cli").await.unwrap();
    store.close().await;
    let created = std::time::Instant::now();
    while crate::pg::selected() && created.elapsed().as_secs_f32() < 1.5 {
        if c.get(app.url("/v1/info")).send().await.unwrap().status() == StatusCode::UNAUTHORIZED {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_error(c.get(app.url("/v1/info")).send().await.unwrap(), 401, "unauthorized").await;
    app.stop().await;
}

#[tokio::test]
async fn a_public_address_without_keys_is_refused_unless_insecure() {
    let dir = temp_dir();
    let db = crate::helpers::fresh_db(&dir);
    let public = |insecure| visage_service::server::Config {
        addr: "0.0.0.0:0".into(),
        insecure_no_auth: insecure,
        ..config(&db)
    };
    let err = visage_service::server::Application::build(public(false)).await.err().expect("refused");
    let msg = format!("{err:#}");
    assert!(msg.contains("without API keys") && msg.contains("visage keys create"), "{msg}");
    let app = visage_service::server::Application::build(public(true)).await.expect("starts with --insecure-no-auth");
    drop(app);
    // With a key it starts, and requires it.
    let store = Store::open(&db).await.unwrap();
    store.create_key("ops", Scope::Admin, "cli").await.unwrap();
    store.close().await;
    let app = spawn_with(public(false)).await;
    let url = app.url("/v1/info").replace("0.0.0.0", "127.0.0.1");
    assert_error(app.client.get(url).send().await.unwrap(), 401, "unauthorized").await;
    app.stop().await;
}

#[tokio::test]
async fn changes_are_audited_append_only_and_deleted_embeddings_leave_no_trace() {
    // SQLite's files are read below: this test is about the embedded store.
    let dir = temp_dir();
    let db = dir.path().join("visage.db");
    let [admin, enroll, _] = keys_in(&db).await;
    let app = spawn_with(config(&db)).await;
    let c = &app.client;
    let form = || {
        reqwest::multipart::Form::new()
            .text("name", "Barack Obama")
            .part("image", reqwest::multipart::Part::bytes(photo("obama.jpg")).file_name("o.jpg"))
    };
    let r = c.post(app.url("/v1/enroll")).bearer_auth(&enroll).multipart(form()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let person = r.json::<serde_json::Value>().await.unwrap()["person_id"].as_str().unwrap().to_string();
    // The stored embedding is the one /v1/embed gives for the same photo.
    let r = c
        .post(app.url("/v1/embed"))
        .bearer_auth(&enroll)
        .header("content-type", "image/jpeg")
        .body(photo("obama.jpg"))
        .send()
        .await
        .unwrap();
    let embedded: serde_json::Value = r.json().await.unwrap();
    let blob: Vec<u8> = embedded["faces"][0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| (v.as_f64().unwrap() as f32).to_le_bytes())
        .collect();
    let on_disk = || {
        let mut all = std::fs::read(&db).unwrap();
        all.extend(std::fs::read(db.with_extension("db-wal")).unwrap_or_default());
        all.windows(blob.len()).any(|w| w == blob.as_slice())
    };
    assert!(on_disk(), "the enrolled embedding is stored");
    let r = c.delete(app.url(&format!("/v1/persons/{person}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(!on_disk(), "a deleted embedding must not be recoverable from the database files");
    // The audit log names the keys, newest first.
    let log: serde_json::Value =
        c.get(app.url("/v1/audit")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    let entries: Vec<(String, String, String)> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().into(),
                e["action"].as_str().unwrap().into(),
                e["subject"].as_str().unwrap().into(),
            )
        })
        .collect();
    let admin_id = format!("key:{}", &admin[4..20]);
    let enroll_id = format!("key:{}", &enroll[4..20]);
    assert_eq!(entries[0], (admin_id, "delete_person".into(), person.clone()));
    assert_eq!(entries[1].0, enroll_id);
    assert_eq!(entries[1].1, "enroll_face");
    assert_eq!(entries[2], (enroll_id, "create_person".into(), person));
    assert!(entries.iter().filter(|e| e.1 == "create_key").all(|e| e.0 == "cli"));
    assert_error(c.get(app.url("/v1/audit")).bearer_auth(&enroll).send().await.unwrap(), 403, "forbidden").await;
    // Nobody rewrites history, not even with SQL.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    for sql in ["DELETE FROM audit", "UPDATE audit SET actor = 'someone else'"] {
        let err = sqlx::query(sql).execute(&pool).await.expect_err("refused");
        assert!(err.to_string().contains("append-only"), "{err}");
    }
    pool.close().await;
    app.stop().await;
}
