//! Encryption at rest (`--data-key-file`): no embedding, i8 code or crop in
//! the database file, its WAL, a backup or the saved graph; the service
//! refuses a database without its key or with a wrong one, before the
//! models load; a sealed value moved to another row does not open; exports
//! stay sealed and import seals again for the receiving database; a
//! rotation while the service writes leaves every face readable by the new
//! key alone.
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt as _;
use serde_json::Value;
use visage_service::gallery::IndexKind;
use visage_service::gallery::rows::quantize;
use visage_service::sealing::{DataKey, DataKeys};
use visage_service::server::{Application, Config};
use visage_service::store::Store;

use crate::helpers::{TestApp, config, fresh_db, photo, spawn_with, temp_dir};

fn key(byte: u8) -> DataKey {
    DataKey::new(&[byte; 32])
}

fn sealed_with(byte: u8) -> DataKeys {
    DataKeys::new(key(byte), vec![])
}

/// The service with crops kept and the graph saved in `index`, sealing with `keys`.
fn keyed(db: &Path, index: &Path, keys: DataKeys) -> Config {
    let mut c = config(db);
    c.service.index.kind = IndexKind::Ann;
    c.service.index_dir = Some(index.to_path_buf());
    c.service.keep_crops = true;
    c.data_keys = keys;
    c
}

/// Every 8-byte window at a 4-byte step of `bytes` (8 bytes: two f32s, eight codes).
fn windows(bytes: &[u8], step: usize) -> HashSet<[u8; 8]> {
    bytes.windows(8).step_by(step).map(|w| w.try_into().unwrap()).collect()
}

/// How many places of `file` hold one of `wanted`.
fn hits(file: &Path, wanted: &HashSet<[u8; 8]>) -> usize {
    let Ok(bytes) = std::fs::read(file) else { return 0 };
    bytes.windows(8).filter(|w| wanted.contains(*w)).count()
}

fn count_png(file: &Path) -> usize {
    let Ok(bytes) = std::fs::read(file) else { return 0 };
    bytes.windows(8).filter(|w| *w == b"\x89PNG\r\n\x1a\n").count()
}

/// The code scale `gallery.meta` records (magic, version, model, dim, scale).
fn saved_scale(index: &Path) -> f32 {
    let meta = std::fs::read(index.join("gallery.meta")).unwrap();
    let model_len = u32::from_le_bytes(meta[12..16].try_into().unwrap()) as usize;
    let at = 16 + model_len + 4;
    f32::from_le_bytes(meta[at..at + 4].try_into().unwrap())
}

fn graph_files(index: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(index)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "usearch"))
        .collect()
}

/// (f32 hits in the database, its WAL and a backup; i8 code hits in the
/// saved graph; PNGs in the database files) for one enrolled face.
async fn biometric_bytes_on_disk(keys: DataKeys) -> (usize, usize, usize) {
    let dir = temp_dir();
    let (db, index) = (dir.path().join("visage.db"), dir.path().join("index"));
    let mut app = spawn_with(keyed(&db, &index, keys.clone())).await;
    app.enroll("Barack Obama", "obama.jpg").await;
    let v: Value = app.post_image("/v1/embed", photo("obama.jpg"), &[]).await.json().await.unwrap();
    let values: Vec<f32> =
        v["faces"][0]["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    let f32_bytes: Vec<u8> = values.iter().flat_map(|x| x.to_le_bytes()).collect();
    let backup = dir.path().join("backup.db");
    let store = Store::open_with(&db, keys).await.unwrap();
    store.backup(&backup).await.unwrap();
    let wal = dir.path().join("visage.db-wal");
    let wanted = windows(&f32_bytes, 4);
    let mut in_db = [&db, &wal, &backup].iter().map(|f| hits(f, &wanted)).sum::<usize>();
    let pngs = [&db, &wal, &backup].iter().map(|f| count_png(f)).sum::<usize>();
    store.close().await;
    app.stop().await;
    // After shutdown: the WAL is folded into the file, the graph saved.
    in_db += hits(&db, &wanted) + hits(&wal, &wanted);
    let codes: Vec<u8> = quantize(&values, saved_scale(&index)).iter().map(|c| *c as u8).collect();
    let in_graph = graph_files(&index).iter().map(|f| hits(f, &windows(&codes, 4))).sum();
    (in_db, in_graph, pngs)
}

#[tokio::test]
async fn no_embedding_code_or_crop_is_on_disk_in_clear_with_a_data_key() {
    // The same search finds them without a key: it can see what it looks for.
    let (in_db, in_graph, pngs) = biometric_bytes_on_disk(DataKeys::none()).await;
    assert!(in_db > 0 && in_graph > 0 && pngs > 0, "clear: {in_db} f32 hits, {in_graph} code hits, {pngs} crops");
    let (in_db, in_graph, pngs) = biometric_bytes_on_disk(sealed_with(7)).await;
    assert_eq!((in_db, in_graph, pngs), (0, 0, 0), "sealed: f32 hits, code hits, crops");
}

/// Start-up fails; (the message, seconds it took).
async fn refused(config: Config) -> (String, f64) {
    let start = Instant::now();
    let err = match Application::build(config).await {
        Ok(_) => panic!("the service started"),
        Err(e) => format!("{e:#}"),
    };
    (err, start.elapsed().as_secs_f64())
}

#[tokio::test]
async fn a_sealed_database_is_refused_without_its_key_or_with_a_wrong_one_before_the_models_load() {
    let dir = temp_dir();
    let db = fresh_db(&dir);
    let index = dir.path().join("index");
    let mut app = spawn_with(keyed(&db, &index, sealed_with(1))).await;
    app.enroll("Barack Obama", "obama.jpg").await;
    app.stop().await;

    let (err, secs) = refused(keyed(&db, &index, DataKeys::none())).await;
    assert!(err.contains("encrypted") && err.contains(&key(1).id().to_string()), "{err}");
    assert!(secs < 1.0, "told in {secs:.2} s");
    let (err, secs) = refused(keyed(&db, &index, sealed_with(2))).await;
    assert!(err.contains("not this database's"), "{err}");
    assert!(secs < 1.0, "told in {secs:.2} s");

    let app = spawn_with(keyed(&db, &index, sealed_with(1))).await;
    let g = app.get_json("/v1/info").await["gallery"].clone();
    assert_eq!(g["index_reopened"], true, "the sealed graph opens with its key: {g}");
    let v: Value = app.post_image("/v1/identify", photo("obama2.jpg"), &[]).await.json().await.unwrap();
    assert_eq!(v["faces"][0]["status"], "identified", "{v}");
    app.stop().await;
}

#[tokio::test]
async fn a_sealed_embedding_moved_onto_another_face_does_not_open() {
    let dir = temp_dir();
    let db = dir.path().join("visage.db");
    let mut app = spawn_with(keyed(&db, &dir.path().join("index"), sealed_with(3))).await;
    app.enroll("Barack Obama", "obama.jpg").await;
    app.enroll("Joe Biden", "biden.jpg").await;
    app.stop().await;
    let store = Store::open_with(&db, sealed_with(3)).await.unwrap();
    let model = store.model_counts().await.unwrap()[0].model.clone();
    assert_eq!(store.embeddings(&model).try_collect::<Vec<_>>().await.unwrap().len(), 2);
    store.close().await;

    // Obama's sealed embedding copied onto Biden's face, in the file itself.
    let url = format!("sqlite://{}", db.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE faces SET embedding = (SELECT embedding FROM faces ORDER BY id LIMIT 1) WHERE id = (SELECT id FROM faces ORDER BY id DESC LIMIT 1)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let store = Store::open_with(&db, sealed_with(3)).await.unwrap();
    let err = store.embeddings(&model).try_collect::<Vec<_>>().await.unwrap_err().to_string();
    assert!(err.contains("does not open"), "{err}");
    store.close().await;
}

#[tokio::test]
async fn exports_stay_sealed_and_import_seals_them_again_for_the_receiving_database() {
    use visage_service::admin::transfer::{export, import};
    let dir = temp_dir();
    let db = fresh_db(&dir);
    let mut app = spawn_with(keyed(&db, &dir.path().join("index"), sealed_with(4))).await;
    app.enroll("Barack Obama", "obama.jpg").await;
    app.stop().await;
    let store = Store::open_with(&db, sealed_with(4)).await.unwrap();
    let model = store.model_counts().await.unwrap()[0].model.clone();
    let (mut sealed, mut clear) = (Vec::new(), Vec::new());
    export(&store, &mut sealed, false).await.unwrap();
    export(&store, &mut clear, true).await.unwrap();
    store.close().await;
    let text = String::from_utf8(sealed.clone()).unwrap();
    assert!(text.contains("sealed_embedding") && !text.contains("\"embedding\""), "{text:.400}");
    assert!(text.contains(&key(4).id().to_string()), "the header names the key");
    assert!(String::from_utf8(clear).unwrap().contains("\"embedding\":["));

    let other = temp_dir();
    let other_db = other.path().join("other.db");
    let receiving = Store::open_with(&other_db, sealed_with(5)).await.unwrap();
    let err = import(&receiving, &sealed[..], &model, None, receiving.sealing()).await.unwrap_err();
    assert!(format!("{err:#}").contains(&key(4).id().to_string()), "{err:#}");
    let file_keys = DataKeys::opening_only(vec![key(4)]);
    let s = import(&receiving, &sealed[..], &model, None, &file_keys).await.unwrap();
    assert_eq!(s.faces_imported, 1);
    assert_eq!(receiving.embeddings(&model).try_collect::<Vec<_>>().await.unwrap().len(), 1);
    receiving.close().await;
    let wrong = Store::open_with(&other_db, sealed_with(4)).await;
    assert!(wrong.is_err(), "the receiving database is sealed with its own key");
}

/// Faces the gallery holds.
async fn faces(app: &TestApp) -> u64 {
    app.get_json("/v1/info").await["gallery"]["faces"].as_u64().unwrap()
}

#[tokio::test]
async fn a_rotation_while_the_service_enrolls_leaves_everything_readable_by_the_new_key_alone() {
    let dir = temp_dir();
    let db = fresh_db(&dir);
    let index = dir.path().join("index");
    let mut app = spawn_with(keyed(&db, &index, sealed_with(1))).await;
    let obama = app.enroll("Barack Obama", "obama.jpg").await;
    app.stop().await;

    // Every replica restarted with both keys, then the rotation runs while it enrolls.
    let both = DataKeys::new(key(2), vec![key(1)]);
    let app = spawn_with(keyed(&db, &index, both.clone())).await;
    let rotation = async {
        let store = Store::open_with(&db, both.clone()).await.unwrap();
        let done = visage_service::admin::data_key::rotate(&store, |_| {}).await.unwrap();
        store.close().await;
        done
    };
    let enrolling = async {
        for name in ["obama2.jpg", "obama3.jpg"] {
            let r = app.post_raw(&format!("/v1/persons/{obama}/faces"), photo(name), "image/jpeg").await;
            assert_eq!(r.status(), 201);
        }
    };
    let (done, ()) = tokio::join!(rotation, enrolling);
    assert!(done.resealed >= 2 && done.retired == 1, "{done:?}");
    app.stop().await;

    let (err, _) = refused(keyed(&db, &index, sealed_with(1))).await;
    assert!(err.contains("not this database's"), "the old key is retired: {err}");
    let app = spawn_with(keyed(&db, &index, sealed_with(2))).await;
    assert_eq!(faces(&app).await, 3);
    let v: Value = app.post_image("/v1/identify", photo("obama.jpg"), &[]).await.json().await.unwrap();
    assert_eq!(v["faces"][0]["match"]["person_id"], obama.as_str(), "{v}");
    app.stop().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}
