//! The store's contract, written against the `Database` interface only, so
//! that every implementation runs the same checks (SQLite and PostgreSQL).
use futures_util::TryStreamExt;
use secrecy::{ExposeSecret, SecretString};
use visage_service::domain::{BBox, Detection, Quality, Scope};
use visage_service::store::{Crop, FaceExport, NewFace, Person, Store, StoreError, Switched};

use crate::helpers::temp_dir;

fn detection(x: f32) -> Detection {
    Detection { bbox: BBox { x, y: 2.0, width: 50.0, height: 60.0 }, landmarks: [[x, 1.0]; 5], score: 0.9 }
}

fn new_face<'a>(d: &'a Detection, embedding: &'a [f32], model: &'a str, sha: Option<&'a str>) -> NewFace<'a> {
    let quality = Quality { face_size: 50.0, eye_distance: 20.0, sharpness: 300.0 };
    NewFace { detection: d, quality, embedding, model, source_sha256: sha, crop: None, external_id: None }
}

/// Each face's embedding by `model` (else its own), by face id.
async fn by_model(store: &Store, model: &str) -> Vec<(String, &'static str, Vec<f32>)> {
    let mut rows: Vec<_> = store.embeddings(model).try_collect().await.unwrap();
    rows.sort_by(|a, b| a.face_id.cmp(&b.face_id));
    let name = |m: &str| -> &'static str { ["m1", "m2", "m3"].into_iter().find(|n| *n == m).unwrap() };
    rows.into_iter().map(|e| (e.face_id, name(&e.model), e.values)).collect()
}

/// Faces by model: (model, own, beside).
async fn counts(store: &Store) -> Vec<(&'static str, u64, u64)> {
    let name = |m: &str| -> &'static str { ["m1", "m2", "m3"].into_iter().find(|n| *n == m).unwrap() };
    store.model_counts().await.unwrap().into_iter().map(|c| (name(&c.model), c.own, c.beside)).collect()
}

/// Every operation of the interface, with the answers the service relies on.
async fn contract(store: Store) {
    store.ping().await.unwrap();
    let start = store.change_horizon().await.unwrap();
    // Persons: created, read, listed by cursor, renamed, named in bulk.
    let (d, e1, e2) = (detection(10.0), vec![0.6f32, 0.8], vec![1.0f32, 0.0]);
    let ann = Person::new("Ann", Some(&serde_json::json!({"team": "a"})));
    let face1 = store.create_person_with_face(&ann, &new_face(&d, &e1, "m1", Some("aa")), "t").await.unwrap();
    assert_eq!(
        (face1.person_id.as_deref().unwrap_or_default(), face1.bbox, face1.model.as_str()),
        (ann.id.as_str(), d.bbox, "m1")
    );
    let bob = Person::new("Bob", None);
    store.create_person(&bob, "t").await.unwrap();
    let got = store.get_person(&ann.id).await.unwrap().unwrap();
    assert_eq!((got.name.as_str(), got.face_count, got.metadata), ("Ann", 1, ann.metadata.clone()));
    assert_eq!(store.get_person("0000").await.unwrap(), None);
    let all = store.list_persons(10, None).await.unwrap();
    assert_eq!(all.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), [ann.id.as_str(), bob.id.as_str()]);
    let after = store.list_persons(10, Some(&ann.id)).await.unwrap();
    assert_eq!(after.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), [bob.id.as_str()]);
    assert_eq!(store.find_person_by_name("Bob").await.unwrap().map(|p| p.id), Some(bob.id.clone()));
    let names = store.person_names(&[&ann.id, "ffff"]).await.unwrap();
    assert_eq!((names.len(), names[&ann.id].as_str()), (1, "Ann"));
    let renamed = store.update_person(&bob.id, Some("Robert"), Some(None), "t").await.unwrap().unwrap();
    assert_eq!((renamed.name.as_str(), renamed.metadata), ("Robert", None));
    assert!(store.update_person("ffff", Some("x"), None, "t").await.unwrap().is_none());

    // Faces: added, listed, found by photo hash, streamed, re-embedded, deleted.
    let face2 = store.add_face(&bob.id, &new_face(&d, &e2, "m2", None), "t").await.unwrap();
    let missing = store.add_face("ffff", &new_face(&d, &e2, "m2", None), "t").await;
    assert!(matches!(missing, Err(StoreError::PersonNotFound(id)) if id == "ffff"));
    assert_eq!(store.list_faces(&bob.id).await.unwrap(), std::slice::from_ref(&face2));
    assert!(store.has_face_from(&ann.id, "aa").await.unwrap());
    assert!(!store.has_face_from(&bob.id, "aa").await.unwrap());
    let streamed = by_model(&store, "m1").await;
    assert_eq!(streamed, [(face1.id.clone(), "m1", e1.clone()), (face2.id.clone(), "m2", e2.clone())]);
    let of = store.embeddings_of(&[&face2.id, "nope"], &[&ann.id], "m1").await.unwrap();
    let mut of: Vec<_> = of.iter().map(|e| (e.face_id.as_str(), e.person_id.as_str())).collect();
    of.sort();
    let mut both = vec![(face1.id.as_str(), ann.id.as_str()), (face2.id.as_str(), bob.id.as_str())];
    both.sort();
    assert_eq!(of, both);

    // Another model's embedding kept beside: each face by m1 (Bob's from
    // beside), Bob's own m2 still there; counted; switched and back; pruned.
    assert_eq!(store.faces_lacking("m1").await.unwrap(), [(face2.clone(), None)]);
    assert!(store.put_embedding(&face2.id, "m1", &e1, "t").await.unwrap());
    assert!(!store.put_embedding(&face1.id, "m1", &e2, "t").await.unwrap(), "its own model");
    assert!(!store.put_embedding("ffff", "m1", &e2, "t").await.unwrap());
    assert!(store.faces_lacking("m1").await.unwrap().is_empty());
    assert_eq!(store.faces_lacking("m2").await.unwrap(), [(face1.clone(), Some("aa".into()))]);
    assert_eq!(
        by_model(&store, "m1").await,
        [(face1.id.clone(), "m1", e1.clone()), (face2.id.clone(), "m1", e1.clone())]
    );
    assert_eq!(
        by_model(&store, "m2").await,
        [(face1.id.clone(), "m1", e1.clone()), (face2.id.clone(), "m2", e2.clone())]
    );
    let of = store.embeddings_of(&[&face2.id], &[], "m1").await.unwrap();
    assert_eq!((of.len(), of[0].model.as_str(), &of[0].values), (1, "m1", &e1));
    assert_eq!(counts(&store).await, [("m1", 1, 1), ("m2", 1, 0)]);
    let done = store.switch_model("m1", false, "t").await.unwrap();
    assert_eq!(done, Switched { switched: 1, lacking: 0, done: true });
    assert_eq!(counts(&store).await, [("m1", 2, 0), ("m2", 0, 1)]);
    let switched = visage_service::store::FaceRecord { model: "m1".into(), ..face2.clone() };
    assert_eq!(store.list_faces(&bob.id).await.unwrap(), std::slice::from_ref(&switched));
    assert_eq!(
        by_model(&store, "m2").await,
        [(face1.id.clone(), "m1", e1.clone()), (face2.id.clone(), "m2", e2.clone())]
    );
    // Back to m2: refused while Ann has no m2 embedding (nothing changes),
    // done with force (Ann stays on m1), and forward again.
    let refused = store.switch_model("m2", false, "t").await.unwrap();
    assert_eq!(refused, Switched { switched: 0, lacking: 1, done: false });
    assert_eq!(counts(&store).await, [("m1", 2, 0), ("m2", 0, 1)]);
    let forced = store.switch_model("m2", true, "t").await.unwrap();
    assert_eq!(forced, Switched { switched: 1, lacking: 1, done: true });
    assert_eq!(store.list_faces(&bob.id).await.unwrap(), std::slice::from_ref(&face2));
    assert_eq!(counts(&store).await, [("m1", 1, 1), ("m2", 1, 0)]);
    assert_eq!(store.switch_model("m1", false, "t").await.unwrap().switched, 1);
    assert_eq!(store.prune_embeddings(Some("m9"), "t").await.unwrap(), 0);
    assert_eq!(store.prune_embeddings(None, "t").await.unwrap(), 1);
    assert_eq!(counts(&store).await, [("m1", 2, 0)]);
    assert_eq!(
        by_model(&store, "m2").await,
        [(face1.id.clone(), "m1", e1.clone()), (face2.id.clone(), "m1", e1.clone())]
    );
    // Kept-beside embeddings go with their face.
    assert!(store.put_embedding(&face2.id, "m3", &e2, "t").await.unwrap());
    assert!(!store.delete_face(&ann.id, &face2.id, "t").await.unwrap(), "another person's face");
    assert!(store.delete_face(&bob.id, &face2.id, "t").await.unwrap());
    assert!(!store.delete_face(&bob.id, &face2.id, "t").await.unwrap());
    assert_eq!(counts(&store).await, [("m1", 1, 0)]);

    // Export, then import: ids kept; a second import of the same person is refused.
    let exported: Vec<FaceExport> = store.export_faces(&ann.id).await.unwrap();
    assert_eq!((exported.len(), exported[0].embedding.clone()), (1, e1.clone()));
    assert_eq!(exported[0].source_sha256.as_deref(), Some("aa"));
    assert!(store.delete_person(&ann.id, "t").await.unwrap());
    assert!(store.list_faces(&ann.id).await.unwrap().is_empty(), "faces go with their person");
    assert!(!store.delete_person(&ann.id, "t").await.unwrap());
    assert!(store.import_person(&ann, &exported, "t").await.unwrap());
    assert!(!store.import_person(&ann, &exported, "t").await.unwrap());
    assert_eq!(store.export_faces(&ann.id).await.unwrap(), exported);
    let ids = store.bulk_enroll(&[("c".into(), e2.clone()), ("d".into(), e2.clone())], "m1").await.unwrap();
    assert_eq!(store.list_persons(10, None).await.unwrap().len(), 4);
    assert_eq!(store.list_faces(&ids[1]).await.unwrap().len(), 1);

    // Keys: only a key's holder authenticates, until it is revoked.
    assert_eq!(store.active_keys().await.unwrap(), 0);
    let created = store.create_key("ops", Scope::Enroll, "t").await.unwrap();
    assert_eq!(store.list_keys().await.unwrap(), std::slice::from_ref(&created.key));
    let found = store.authenticate(&created.secret).await.unwrap();
    assert_eq!(found, Some(created.key.clone()));
    let ring = store.valid_keys().await.unwrap();
    assert_eq!((ring.len(), &ring[0].0, ring[0].1.len()), (1, &created.key, 32));
    let wrong = SecretString::from(format!("{}x", created.secret.expose_secret()));
    assert_eq!(store.authenticate(&wrong).await.unwrap(), None);
    assert!(store.revoke_key(&created.key.id, "t").await.unwrap());
    assert!(!store.revoke_key(&created.key.id, "t").await.unwrap());
    assert_eq!(store.authenticate(&created.secret).await.unwrap(), None);
    assert_eq!(store.active_keys().await.unwrap(), 0);

    // The audit log: every change above, newest first, paged by sequence number.
    let log = store.audit_log(100, None).await.unwrap();
    let actions: Vec<&str> = log.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "create_person",
            "enroll_face",
            "create_person",
            "update_person",
            "enroll_face",
            "reembed_face",
            "switch_model",
            "switch_model",
            "switch_model",
            "prune_embeddings",
            "reembed_face",
            "delete_face",
            "delete_person",
            "import_person",
            "import_person",
            "import_person",
            "create_key",
            "revoke_key"
        ]
    );
    // The same changes, in the same order, as a replica follows them (on
    // PostgreSQL, once no older transaction of the cluster is still running:
    // other tests' may hold the last ones back for a moment).
    let mut changes = store.changes_after(start, 1000).await.unwrap();
    for _ in 0..100 {
        if changes.len() == log.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        changes = store.changes_after(start, 1000).await.unwrap();
    }
    let followed: Vec<(&str, &str)> = changes.iter().map(|c| (c.action.as_str(), c.subject.as_str())).collect();
    let logged: Vec<(&str, &str)> = log.iter().rev().map(|e| (e.action.as_str(), e.subject.as_str())).collect();
    assert_eq!(followed, logged);
    assert!(changes.windows(2).all(|w| w[0].pos < w[1].pos));
    let rest = store.changes_after(changes[8].pos, 2).await.unwrap();
    assert_eq!(rest, changes[9..11]);
    assert!(store.changes_after(changes[changes.len() - 1].pos, 10).await.unwrap().is_empty());
    let older = store.audit_log(2, Some(log[1].seq)).await.unwrap();
    assert_eq!(older, log[2..4]);
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
    store.close().await;
    assert!(store.ping().await.is_err(), "a closed store answers nothing");
}

#[tokio::test]
async fn sqlite_keeps_the_store_contract() {
    let dir = temp_dir();
    contract(Store::open(&dir.path().join("contract.db")).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_keeps_the_store_contract() {
    contract(Store::open(&crate::pg::database()).await.unwrap()).await;
}

/// Kept crops: stored with the face in its transaction, read back as they
/// were, deleted with the face and with the person.
async fn crops_contract(store: Store) {
    let d = detection(10.0);
    let crop = Crop {
        png: vec![0x89, b'P', b'N', b'G', 1, 2, 3],
        landmarks: [[1.5, 2.5], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0], [9.0, 10.25]],
    };
    let ann = Person::new("Ann", None);
    let kept = NewFace { crop: Some(&crop), ..new_face(&d, &[1.0, 0.0], "m1", None) };
    let f1 = store.create_person_with_face(&ann, &kept, "t").await.unwrap();
    let f2 = store.add_face(&ann.id, &kept, "t").await.unwrap();
    let f3 = store.add_face(&ann.id, &new_face(&d, &[0.0, 1.0], "m1", None), "t").await.unwrap();
    assert_eq!(store.face_crop(&f1.id).await.unwrap(), Some(crop.clone()));
    assert_eq!(store.face_crop(&f2.id).await.unwrap(), Some(crop.clone()));
    assert_eq!(store.face_crop(&f3.id).await.unwrap(), None, "enrolled without --keep-crops");
    assert_eq!(store.face_crop("not an id").await.unwrap(), None);
    // A crop for a person who vanished is refused with the face, not left behind.
    let e = store.add_face("01a2224222ec71bdb9d7a84a1ee5db30", &kept, "t").await.unwrap_err();
    assert!(matches!(e, StoreError::PersonNotFound(_)), "{e}");
    assert!(store.delete_face(&ann.id, &f1.id, "t").await.unwrap());
    assert_eq!(store.face_crop(&f1.id).await.unwrap(), None);
    assert!(store.delete_person(&ann.id, "t").await.unwrap());
    assert_eq!(store.face_crop(&f2.id).await.unwrap(), None);
    store.close().await;
}

#[tokio::test]
async fn sqlite_keeps_crops_with_their_faces_only() {
    let dir = temp_dir();
    crops_contract(Store::open(&dir.path().join("crops.db")).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_keeps_crops_with_their_faces_only() {
    crops_contract(Store::open(&crate::pg::database()).await.unwrap()).await;
}

#[tokio::test]
async fn a_database_url_this_build_cannot_serve_is_refused_not_taken_for_a_file() {
    let dir = temp_dir();
    let url = format!("mysql://user@{}:3306/db", dir.path().display());
    let e = Store::open(std::path::Path::new(&url)).await.err().expect("refused");
    assert!(e.to_string().contains("mysql://") && e.to_string().contains("sqlite://PATH"), "{e}");
    assert!(!std::path::Path::new("mysql:").exists(), "a folder named after the URL was created");
    // The same file is reachable as a path or as a sqlite:// URL.
    let path = dir.path().join("v.db");
    Store::open(&path).await.unwrap().create_person(&Person::new("Ann", None), "t").await.unwrap();
    let url = std::path::PathBuf::from(format!("sqlite://{}", path.display()));
    assert_eq!(Store::open(&url).await.unwrap().list_persons(10, None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn postgres_refuses_to_rewrite_the_audit_log_and_points_backups_to_pg_dump() {
    let url = crate::pg::database();
    let store = Store::open(&url).await.unwrap();
    store.create_person(&Person::new("Ann", None), "t").await.unwrap();
    let pool = sqlx::PgPool::connect(url.to_str().unwrap()).await.unwrap();
    for sql in ["DELETE FROM audit", "UPDATE audit SET actor = 'someone else'", "TRUNCATE audit"] {
        let err = sqlx::query(sql).execute(&pool).await.expect_err("refused");
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(store.audit_log(10, None).await.unwrap().len(), 1);
    let err = store.backup(&temp_dir().path().join("b.db")).await.unwrap_err().to_string();
    assert!(err.contains("pg_dump"), "{err}");
    pool.close().await;
    store.close().await;
}

#[tokio::test]
async fn replicas_starting_together_apply_the_migrations_once() {
    let url = crate::pg::database();
    let opened = futures_util::future::join_all((0..4).map(|_| Store::open(&url))).await;
    for store in &opened {
        store.as_ref().unwrap().ping().await.unwrap();
    }
    let pool = sqlx::PgPool::connect(url.to_str().unwrap()).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations").fetch_one(&pool).await.unwrap();
    let expected = std::fs::read_dir(crate::helpers::root().join("migrations/postgres")).unwrap().count();
    assert_eq!(applied, expected as i64);
    pool.close().await;
}

/// Transactions commit out of sequence order: one that took a lower `seq`
/// can commit after one with a higher `seq` was read. A reader that
/// remembered "up to that seq" would skip the slow one for good.
#[tokio::test]
async fn postgres_changes_that_commit_out_of_order_are_never_skipped() {
    let url = crate::pg::database();
    let store = Store::open(&url).await.unwrap();
    let mut position = store.change_horizon().await.unwrap();
    let mut followed = Vec::new();
    let follow = async |position: &mut visage_service::store::ChangePos| {
        let changes = store.changes_after(*position, 100).await.unwrap();
        if let Some(last) = changes.last() {
            *position = last.pos;
        }
        changes.into_iter().map(|c| c.subject).collect::<Vec<_>>()
    };
    // A slow writer takes its sequence number first and keeps its transaction open...
    let pool = sqlx::PgPool::connect(url.to_str().unwrap()).await.unwrap();
    let mut slow = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO audit (at, actor, action, subject) VALUES (now(), 't', 'create_person', 'slow')")
        .execute(&mut *slow)
        .await
        .unwrap();
    // ...while a fast one commits after it, with a higher number.
    let fast = Person::new("fast", None);
    store.create_person(&fast, "t").await.unwrap();
    followed.extend(follow(&mut position).await);
    slow.commit().await.unwrap();
    // Other tests' transactions in the same cluster may hold changes back
    // for a moment: follow until both arrive (or 10 s pass).
    for _ in 0..200 {
        followed.extend(follow(&mut position).await);
        if followed.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    followed.extend(follow(&mut position).await);
    assert_eq!(followed, ["slow", fast.id.as_str()], "every change, each once, in commit-safe order");
    pool.close().await;
}
