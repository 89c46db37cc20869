//! The store's contract for faces without a person, on both databases: kept
//! in clusters, relabelled, moved, assigned, merged, purged; and the SQLite
//! migration that made `person_id` nullable keeps every row that refers to
//! a face.
use futures_util::TryStreamExt;
use visage_service::domain::{BBox, Detection, Quality, new_id};
use visage_service::store::{AssignTo, NewFace, Owner, Person, Regroup, Store, StoreError};

use crate::helpers::temp_dir;

fn detection() -> Detection {
    Detection { bbox: BBox { x: 1.0, y: 2.0, width: 50.0, height: 60.0 }, landmarks: [[1.0, 1.0]; 5], score: 0.9 }
}

fn face<'a>(d: &'a Detection, embedding: &'a [f32], external_id: Option<&'a str>) -> NewFace<'a> {
    let quality = Quality { face_size: 50.0, eye_distance: 20.0, sharpness: 300.0 };
    NewFace { detection: d, quality, embedding, model: "m1", source_sha256: None, crop: None, external_id }
}

/// The unassigned faces as (face, cluster), sorted.
async fn unassigned(store: &Store) -> Vec<(String, String)> {
    let mut rows: Vec<_> =
        store.unassigned_embeddings("m1").map_ok(|e| (e.face_id, e.cluster_id)).try_collect().await.unwrap();
    rows.sort();
    rows
}

async fn contract(store: Store) {
    let d = detection();
    let (c1, c2) = (new_id(), new_id());
    let kept = store
        .keep_faces(
            &[(face(&d, &[1.0, 0.0], Some("a.jpg")), c1.clone()), (face(&d, &[0.0, 1.0], None), c2.clone())],
            &[],
            "t",
        )
        .await
        .unwrap();
    let (f1, f2) = (kept[0].id.clone(), kept[1].id.clone());
    assert_eq!((kept[0].person_id.as_deref(), kept[0].cluster_id.as_deref()), (None, Some(c1.as_str())));
    assert_eq!(kept[0].external_id.as_deref(), Some("a.jpg"));
    assert_eq!(store.get_face(&f1).await.unwrap().as_ref(), Some(&kept[0]));
    assert_eq!(store.get_face(&new_id()).await.unwrap(), None);
    assert_eq!(store.get_face("not an id").await.unwrap(), None);
    // Unassigned faces are never in the gallery's load.
    let gallery: Vec<_> = store.embeddings("m1").try_collect().await.unwrap();
    assert!(gallery.is_empty());
    assert_eq!(unassigned(&store).await.len(), 2);
    // Steps after the new faces, in order: a face moved to another
    // cluster, then that cluster merged (the moved face goes with it), and
    // the new face placed in a cluster merged away later goes too.
    let c4 = new_id();
    let steps = [
        Regroup::Move { face: f2.clone(), to: c4.clone() },
        Regroup::Merge { from: c4.clone(), into: c2.clone() },
        Regroup::Merge { from: c1.clone(), into: c2.clone() },
    ];
    let f3 = store.keep_faces(&[(face(&d, &[0.0, 1.0], None), c1.clone())], &steps, "t").await.unwrap();
    assert_eq!(
        unassigned(&store).await.into_iter().map(|(_, c)| c).collect::<Vec<_>>(),
        [c2.clone(), c2.clone(), c2.clone()]
    );
    let moved_alone = [Regroup::Move { face: f3[0].id.clone(), to: c4.clone() }];
    store.keep_faces(&[], &moved_alone, "t").await.unwrap();
    assert_eq!(store.get_face(&f3[0].id).await.unwrap().unwrap().cluster_id.as_deref(), Some(c4.as_str()));
    store.keep_faces(&[], &[Regroup::Merge { from: c4.clone(), into: c2.clone() }], "t").await.unwrap();
    let listed = store.list_unassigned(2, None).await.unwrap();
    let rest = store.list_unassigned(2, Some(&listed[1].id)).await.unwrap();
    assert_eq!((listed.len(), rest.len()), (2, 1));
    // Assigned to a new person: every face of the cluster, in one go.
    let ann = Person::new("Ann", None);
    let mut moved = store.assign_cluster(&c2, AssignTo::New(&ann), "t").await.unwrap();
    moved.sort();
    let mut all = vec![f1.clone(), f2.clone(), f3[0].id.clone()];
    all.sort();
    assert_eq!(moved, all);
    assert_eq!(store.get_person(&ann.id).await.unwrap().unwrap().face_count, 3);
    // A second assignment of the same cluster moves nothing and creates no one.
    let bob = Person::new("Bob", None);
    assert!(store.assign_cluster(&c2, AssignTo::New(&bob), "t").await.unwrap().is_empty());
    assert_eq!(store.get_person(&bob.id).await.unwrap(), None);
    let e = store.assign_cluster(&c2, AssignTo::Existing(&new_id()), "t").await.unwrap_err();
    assert!(matches!(e, StoreError::PersonNotFound(_)), "{e}");
    // Moved out again, into a cluster; then to a person who does not exist: refused.
    let c3 = new_id();
    let out = store.move_face(&f1, Owner::Cluster(&c3), "t").await.unwrap().unwrap();
    assert_eq!((out.person_id, out.cluster_id.as_deref()), (None, Some(c3.as_str())));
    let e = store.move_face(&f1, Owner::Person(&new_id()), "t").await.unwrap_err();
    assert!(matches!(e, StoreError::PersonNotFound(_)), "{e}");
    assert_eq!(store.move_face(&new_id(), Owner::Cluster(&c3), "t").await.unwrap(), None);
    let of = store.unassigned_of(&[&f1, &f2], "m1").await.unwrap();
    assert_eq!(of.len(), 1);
    assert_eq!(
        (of[0].face_id.as_str(), of[0].cluster_id.as_str(), of[0].external_id.as_deref()),
        (f1.as_str(), c3.as_str(), Some("a.jpg"))
    );
    // Merge: Bob's faces go to Ann, Bob is deleted.
    store.create_person_with_face(&bob, &face(&d, &[0.6, 0.8], None), "t").await.unwrap();
    let moved = store.merge_persons(&ann.id, &[&bob.id], "t").await.unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(store.get_person(&bob.id).await.unwrap(), None);
    assert_eq!(store.get_person(&ann.id).await.unwrap().unwrap().face_count, 3);
    let e = store.merge_persons(&ann.id, &[&bob.id], "t").await.unwrap_err();
    assert!(matches!(e, StoreError::PersonNotFound(ref p) if *p == bob.id), "{e}");
    // The purge takes unassigned faces older than the limit, never assigned ones.
    assert!(store.purge_unassigned("2000-01-01T00:00:00Z", "ttl").await.unwrap().is_empty());
    let gone = store.purge_unassigned("2999-01-01T00:00:00Z", "ttl").await.unwrap();
    assert_eq!(gone, vec![f1.clone()]);
    assert_eq!(store.get_person(&ann.id).await.unwrap().unwrap().face_count, 3);
    assert!(unassigned(&store).await.is_empty());
    // Delete means delete, assigned or not.
    assert!(store.delete_face_by_id(&f2, "t").await.unwrap());
    assert!(!store.delete_face_by_id(&f2, "t").await.unwrap());
    // Every change is in the change log.
    let log = store.audit_log(100, None).await.unwrap();
    for action in
        ["keep_face", "merge_cluster", "regroup_face", "assign_face", "move_face", "purge_face", "delete_face"]
    {
        assert!(log.iter().any(|e| e.action == action), "no {action} in the log");
    }
    store.close().await;
}

#[tokio::test]
async fn sqlite_keeps_the_unassigned_faces_contract() {
    let dir = temp_dir();
    contract(Store::open(&dir.path().join("u.db")).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_keeps_the_unassigned_faces_contract() {
    contract(Store::open(&crate::pg::database()).await.unwrap()).await;
}

/// A database made before faces could be unassigned: the migration rebuilds
/// `faces`, and the crops and embeddings kept beside its faces must survive.
#[tokio::test]
async fn the_sqlite_rebuild_of_faces_keeps_their_crops_and_embeddings() {
    use sqlx::Connection as _;
    let dir = temp_dir();
    let path = dir.path().join("old.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    {
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let mut old = sqlx::migrate::Migrator::new(std::path::Path::new("migrations/sqlite")).await.unwrap();
        let before: Vec<_> = old.migrations.iter().filter(|m| m.version < 20261207000000).cloned().collect();
        old.migrations = before.into();
        old.run(&mut conn).await.unwrap();
        let (p, f) = (new_id(), new_id());
        sqlx::query("INSERT INTO persons (id, name, created_at, updated_at) VALUES (?, 'Ann', 'x', 'x')")
            .bind(&p)
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO faces (id, person_id, embedding, model, box_x, box_y, box_width, box_height, landmarks, \
             score, quality, created_at) VALUES (?, ?, x'0000803f', 'm1', 0, 0, 1, 1, '[]', 1, '{}', 'x')",
        )
        .bind(&f)
        .bind(&p)
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query("INSERT INTO face_crops VALUES (?, x'89', '[]', 'x')").bind(&f).execute(&mut conn).await.unwrap();
        sqlx::query("INSERT INTO face_embeddings VALUES (?, 'm2', x'0000803f', 'x')")
            .bind(&f)
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let store = Store::open(&path).await.unwrap();
    let counts = store.model_counts().await.unwrap();
    assert!(counts.iter().any(|c| c.model == "m2" && c.beside == 1), "the embedding kept beside was lost: {counts:?}");
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let crops: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM face_crops").fetch_one(&mut conn).await.unwrap();
    assert_eq!(crops, 1, "the kept crop was lost");
    store.close().await;
}
