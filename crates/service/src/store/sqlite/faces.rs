//! Face rows: enrolled embeddings and where they came from.
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow as _, Row, SqlitePool};

use super::{audit, outbox, persons};
use crate::domain::new_id;
use crate::domain::{BBox, Quality};
use crate::sealing::DataKeys;
use crate::store::{
    Crop, DeleteReason, FacePlace, FaceRecord, NewEvent, NewFace, Owner, Person, StoreError, StoreResult,
    StoredEmbedding, now, open_crop, open_embedding, seal_crop, seal_embedding,
};

/// The columns `face` reads.
pub(super) const COLUMNS: &str = "id, person_id, external_id, cluster_id, model, box_x, box_y, box_width, box_height, \
     landmarks, score, quality, created_at";

/// Writes one face row as it is (new enrollments and imports alike).
pub(super) async fn insert_record<'e, E: sqlx::SqliteExecutor<'e>>(
    exec: E,
    keys: &DataKeys,
    r: &FaceRecord,
    embedding: &[f32],
    source_sha256: Option<&str>,
) -> Result<sqlx::sqlite::SqliteQueryResult, sqlx::Error> {
    let landmarks = serde_json::to_string(&r.landmarks).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let quality = serde_json::to_string(&r.quality).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "INSERT INTO faces (id, person_id, embedding, model, box_x, box_y, box_width, box_height, landmarks, \
         score, quality, created_at, source_sha256, external_id, cluster_id) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&r.id)
    .bind(&r.person_id)
    .bind(seal_embedding(keys, &r.id, &r.model, embedding))
    .bind(&r.model)
    .bind(f64::from(r.bbox.x))
    .bind(f64::from(r.bbox.y))
    .bind(f64::from(r.bbox.width))
    .bind(f64::from(r.bbox.height))
    .bind(landmarks)
    .bind(f64::from(r.score))
    .bind(quality)
    .bind(&r.created_at)
    .bind(source_sha256)
    .bind(&r.external_id)
    .bind(&r.cluster_id)
    .execute(exec)
    .await
}

fn corrupt(what: &str) -> impl Fn(serde_json::Error) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

/// A face's columns as [`COLUMNS`] reads them.
#[derive(sqlx::FromRow)]
struct FaceRow {
    id: String,
    person_id: Option<String>,
    external_id: Option<String>,
    cluster_id: Option<String>,
    model: String,
    box_x: f64,
    box_y: f64,
    box_width: f64,
    box_height: f64,
    landmarks: String,
    score: f64,
    quality: String,
    created_at: String,
}

pub(super) fn face(row: &SqliteRow) -> StoreResult<FaceRecord> {
    let r = FaceRow::from_row(row)?;
    Ok(FaceRecord {
        bbox: BBox { x: r.box_x as f32, y: r.box_y as f32, width: r.box_width as f32, height: r.box_height as f32 },
        landmarks: serde_json::from_str(&r.landmarks).map_err(corrupt("landmarks"))?,
        score: r.score as f32,
        quality: serde_json::from_str(&r.quality).map_err(corrupt("quality"))?,
        id: r.id,
        person_id: r.person_id,
        external_id: r.external_id,
        cluster_id: r.cluster_id,
        model: r.model,
        created_at: r.created_at,
    })
}

/// Writes a new face (and its kept crop), for a person or in a cluster.
pub(super) async fn insert_face(
    conn: &mut sqlx::SqliteConnection,
    keys: &DataKeys,
    owner: Owner<'_>,
    new: &NewFace<'_>,
) -> StoreResult<FaceRecord> {
    let record = new.record_in(owner);
    let result = insert_record(&mut *conn, keys, &record, new.embedding, new.source_sha256).await;
    match result {
        Ok(_) => {
            if let Some(crop) = new.crop {
                let landmarks = serde_json::to_string(&crop.landmarks).map_err(corrupt("landmarks"))?;
                sqlx::query("INSERT INTO face_crops (face_id, image, landmarks, created_at) VALUES (?, ?, ?, ?)")
                    .bind(&record.id)
                    .bind(seal_crop(keys, &record.id, &crop.png))
                    .bind(landmarks)
                    .bind(&record.created_at)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(record)
        }
        // The person vanished (foreign key): report it as such.
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
            Err(StoreError::PersonNotFound(record.person_id.unwrap_or_default()))
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn add(
    pool: &SqlitePool,
    keys: &DataKeys,
    person_id: &str,
    new: &NewFace<'_>,
    actor: &str,
) -> StoreResult<FaceRecord> {
    let mut tx = pool.begin().await?;
    let face = insert_face(&mut tx, keys, Owner::Person(person_id), new).await?;
    audit::record(&mut *tx, actor, "enroll_face", &face.id).await?;
    outbox::emit(&mut *tx, &NewEvent::face_added(&face, actor)).await?;
    tx.commit().await?;
    Ok(face)
}

pub(super) async fn create_person_with(
    pool: &SqlitePool,
    keys: &DataKeys,
    person: &Person,
    new: &NewFace<'_>,
    actor: &str,
) -> StoreResult<FaceRecord> {
    let mut tx = pool.begin().await?;
    persons::insert(&mut *tx, person).await?;
    let face = insert_face(&mut tx, keys, Owner::Person(&person.id), new).await?;
    audit::record(&mut *tx, actor, "create_person", &person.id).await?;
    audit::record(&mut *tx, actor, "enroll_face", &face.id).await?;
    outbox::emit(&mut *tx, &NewEvent::person_created(&person.id, &person.name, actor)).await?;
    outbox::emit(&mut *tx, &NewEvent::face_added(&face, actor)).await?;
    tx.commit().await?;
    Ok(face)
}

pub(super) async fn list(pool: &SqlitePool, person_id: &str) -> StoreResult<Vec<FaceRecord>> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM faces WHERE person_id = ? ORDER BY id"))
        .bind(person_id)
        .fetch_all(pool)
        .await?;
    rows.iter().map(face).collect()
}

/// Deletes one face of a person. False when there is no such face.
pub(super) async fn delete(pool: &SqlitePool, person_id: &str, face_id: &str, actor: &str) -> StoreResult<bool> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query("DELETE FROM faces WHERE id = ? AND person_id = ?")
        .bind(face_id)
        .bind(person_id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    audit::record(&mut *tx, actor, "delete_face", face_id).await?;
    let gone = NewEvent::face_deleted(face_id, FacePlace::person(person_id), DeleteReason::Request, actor);
    outbox::emit(&mut *tx, &gone).await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) fn stored_embedding(keys: &DataKeys, r: SqliteRow) -> StoreResult<StoredEmbedding> {
    let blob: &[u8] = r.try_get("embedding")?;
    let (face_id, model): (String, String) = (r.try_get("id")?, r.try_get("model")?);
    Ok(StoredEmbedding {
        values: open_embedding(keys, &face_id, &model, blob)?,
        face_id,
        person_id: r.try_get("person_id")?,
        model,
    })
}

/// One row an enrolled face (not the unassigned ones): its embedding by the
/// model bound first, own or kept beside; else its own (of another model).
/// Takes more conditions after `AND`.
pub(super) const EMBEDDING_OF_MODEL: &str = "SELECT f.id, f.person_id, COALESCE(e.model, f.model) AS model, \
     COALESCE(e.embedding, f.embedding) AS embedding FROM faces f \
     LEFT JOIN face_embeddings e ON e.face_id = f.id AND e.model = ? WHERE f.person_id IS NOT NULL";

/// Every face's embedding, preferring `model`'s, row by row.
pub(super) fn embeddings<'a>(
    pool: &'a SqlitePool,
    keys: &'a DataKeys,
    model: &str,
) -> BoxStream<'a, StoreResult<StoredEmbedding>> {
    sqlx::query(EMBEDDING_OF_MODEL)
        .bind(model.to_string())
        .fetch(pool)
        .map(move |row| row.map_err(StoreError::from).and_then(|r| stored_embedding(keys, r)))
        .boxed()
}

/// The face's kept crop.
pub(super) async fn face_crop(pool: &SqlitePool, keys: &DataKeys, face_id: &str) -> StoreResult<Option<Crop>> {
    let Some(row) = sqlx::query("SELECT image, landmarks FROM face_crops WHERE face_id = ?")
        .bind(face_id)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let landmarks: String = row.try_get("landmarks")?;
    Ok(Some(Crop {
        png: open_crop(keys, face_id, row.try_get("image")?)?,
        landmarks: serde_json::from_str(&landmarks).map_err(corrupt("landmarks"))?,
    }))
}

/// Every face record, by person.
pub(super) fn face_records(pool: &SqlitePool) -> BoxStream<'_, StoreResult<FaceRecord>> {
    // The query text lives as long as the stream: a static string.
    static QUERY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("SELECT {COLUMNS} FROM faces WHERE person_id IS NOT NULL ORDER BY person_id, id")
    });
    sqlx::query(QUERY.as_str()).fetch(pool).map(|row| row.map_err(StoreError::from).and_then(|r| face(&r))).boxed()
}

/// Creates one person per embedding, each with one face, in batched transactions.
pub(super) async fn bulk_enroll(
    pool: &SqlitePool,
    keys: &DataKeys,
    items: &[(String, Vec<f32>)],
    model: &str,
) -> StoreResult<Vec<String>> {
    let mut ids = Vec::with_capacity(items.len());
    for batch in items.chunks(10_000) {
        let mut tx = pool.begin().await?;
        for (name, embedding) in batch {
            let person = Person::new(name, None);
            persons::insert(&mut *tx, &person).await?;
            let record = FaceRecord {
                id: new_id(),
                person_id: Some(person.id.clone()),
                external_id: None,
                cluster_id: None,
                bbox: BBox { x: 0.0, y: 0.0, width: 0.0, height: 0.0 },
                landmarks: [[0.0; 2]; 5],
                score: 0.0,
                quality: Quality { face_size: 0.0, eye_distance: 0.0, sharpness: 0.0 },
                model: model.to_string(),
                created_at: now(),
            };
            insert_record(&mut *tx, keys, &record, embedding, None).await?;
            audit::record(&mut *tx, "bulk", "import_person", &person.id).await?;
            outbox::emit(&mut *tx, &NewEvent::person_created(&person.id, &person.name, "bulk")).await?;
            ids.push(person.id);
        }
        tx.commit().await?;
    }
    Ok(ids)
}
