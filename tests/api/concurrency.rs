//! 16 clients enrolling, verifying, identifying and deleting at once: the
//! store and the in-memory gallery end consistent with what was acknowledged.
use std::collections::HashSet;

use serde_json::Value;

use crate::helpers::{config, photo, spawn_with, temp_dir};

const CLIENTS: usize = 16;
const ROUNDS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_leave_store_and_gallery_consistent() {
    let dir = temp_dir();
    let mut cfg = config(&crate::helpers::fresh_db(&dir));
    cfg.queue = 64;
    let app = std::sync::Arc::new(spawn_with(cfg).await);
    let photos = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"];
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let (mut kept, mut deleted, mut statuses) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..ROUNDS {
                let name = format!("client {client} round {round}");
                let bytes = photo(photos[(client + round) % photos.len()]);
                let r = app.post_image("/v1/enroll", bytes.clone(), &[("name", &name)]).await;
                statuses.push(r.status().as_u16());
                if r.status() != 201 {
                    continue;
                }
                let v: Value = r.json().await.unwrap();
                let person = v["person_id"].as_str().unwrap().to_string();
                let face = v["face"]["id"].as_str().unwrap().to_string();
                let r = app.post_image("/v1/verify", bytes.clone(), &[("person_id", &person)]).await;
                statuses.push(r.status().as_u16());
                let r = app.post_image("/v1/identify", bytes, &[]).await;
                statuses.push(r.status().as_u16());
                if round % 2 == 1 {
                    let r = app.client.delete(app.url(&format!("/v1/persons/{person}"))).send().await.unwrap();
                    statuses.push(r.status().as_u16());
                    if r.status() == 204 {
                        deleted.push(person);
                        continue;
                    }
                }
                kept.push((person, face));
            }
            (kept, deleted, statuses)
        }));
    }
    let (mut kept, mut deleted, mut statuses) = (Vec::new(), Vec::new(), Vec::new());
    for t in tasks {
        let (k, d, s) = t.await.unwrap();
        kept.extend(k);
        deleted.extend(d);
        statuses.extend(s);
    }
    let server_errors = statuses.iter().filter(|s| **s >= 500).count();
    eprintln!(
        "{} requests, {} enrollments kept, {} deleted, {} 5xx, statuses {:?}",
        statuses.len(),
        kept.len(),
        deleted.len(),
        server_errors,
        statuses.iter().collect::<std::collections::BTreeSet<_>>()
    );
    assert_eq!(server_errors, 0);
    assert!(statuses.iter().all(|s| (200..300).contains(s)), "every request succeeded");
    assert_eq!(kept.len() + deleted.len(), CLIENTS * ROUNDS);
    // SQLite: every kept enrollment with its face; every deletion gone.
    for (person, face) in &kept {
        let v = app.get_json(&format!("/v1/persons/{person}")).await;
        let faces: HashSet<&str> = v["faces"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
        assert_eq!(faces, HashSet::from([face.as_str()]), "{person}");
    }
    for person in &deleted {
        let r = app.client.get(app.url(&format!("/v1/persons/{person}"))).send().await.unwrap();
        assert_eq!(r.status(), 404, "{person}");
    }
    let listed = app.get_json("/v1/persons?limit=1000").await;
    assert_eq!(listed["persons"].as_array().unwrap().len(), kept.len());
    // The gallery holds exactly the kept faces: counts, and every kept person verifies.
    let info = app.get_json("/v1/info").await;
    assert_eq!(info["gallery"]["persons"].as_u64(), Some(kept.len() as u64));
    assert_eq!(info["gallery"]["faces"].as_u64(), Some(kept.len() as u64));
    for person in deleted.iter().take(4) {
        let r = app.post_image("/v1/verify", photo("obama.jpg"), &[("person_id", person)]).await;
        assert_eq!(r.status(), 404, "a deleted person cannot be verified against");
    }
    match std::sync::Arc::try_unwrap(app) {
        Ok(app) => app.stop().await,
        Err(_) => panic!("the app is still shared"),
    }
}
