//! Bulk operations of the admin commands: look-ups by photo hash, export and
//! import of persons with their embeddings, and re-embedding.
use sqlx::{Row, SqlitePool};

use super::faces::{COLUMNS as FACE_COLUMNS, face as face_row, insert_record};
use super::{audit, persons};
use crate::store::{FaceExport, FaceRecord, Person, StoreError, StoreResult, blob_to_embedding, embedding_to_blob};

/// Whether this person already has a face from the photo with this hash.
pub(super) async fn has_face_from(pool: &SqlitePool, person_id: &str, source_sha256: &str) -> StoreResult<bool> {
    let row = sqlx::query("SELECT 1 FROM faces WHERE person_id = ? AND source_sha256 = ? LIMIT 1")
        .bind(person_id)
        .bind(source_sha256)
        .fetch_optional(pool)
        .await?;
    Ok(row.is_some())
}

/// A person's faces with their embeddings, for export.
pub(super) async fn export_faces(pool: &SqlitePool, person_id: &str) -> StoreResult<Vec<FaceExport>> {
    let rows = sqlx::query(&format!(
        "SELECT {FACE_COLUMNS}, source_sha256, embedding FROM faces WHERE person_id = ? ORDER BY id"
    ))
    .bind(person_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let blob: &[u8] = r.try_get("embedding")?;
            Ok(FaceExport {
                face: face_row(r)?,
                source_sha256: r.try_get("source_sha256")?,
                embedding: blob_to_embedding(blob)?,
            })
        })
        .collect()
}

/// Stores an exported person with their faces, ids kept, in one
/// transaction. False (and nothing written) when the person id exists.
pub(super) async fn import_person(
    pool: &SqlitePool,
    person: &Person,
    faces: &[FaceExport],
    actor: &str,
) -> StoreResult<bool> {
    // The write lock from the start: a deferred transaction that reads
    // first and then writes fails at once ("database is locked") when
    // another connection wrote in between, instead of waiting its turn.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    if persons::exists(&mut *tx, &person.id).await? {
        return Ok(false);
    }
    persons::insert(&mut *tx, person).await?;
    for f in faces {
        let record = FaceRecord { person_id: person.id.clone(), ..f.face.clone() };
        insert_record(&mut *tx, &record, &f.embedding, f.source_sha256.as_deref()).await?;
    }
    audit::record(&mut *tx, actor, "import_person", &person.id).await?;
    tx.commit().await?;
    Ok(true)
}

/// Faces embedded by another model than `model`, with their photo hashes.
pub(super) async fn faces_not_of_model(
    pool: &SqlitePool,
    model: &str,
) -> StoreResult<Vec<(FaceRecord, Option<String>)>> {
    let rows = sqlx::query(&format!(
        "SELECT {FACE_COLUMNS}, source_sha256 FROM faces WHERE model <> ? ORDER BY person_id, id"
    ))
    .bind(model)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| Ok((face_row(r)?, r.try_get("source_sha256")?))).collect()
}

/// Replaces a face's embedding (and where the new model found the face).
pub(super) async fn replace_embedding(
    pool: &SqlitePool,
    face: &FaceRecord,
    embedding: &[f32],
    actor: &str,
) -> StoreResult<bool> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "UPDATE faces SET embedding = ?, model = ?, box_x = ?, box_y = ?, box_width = ?, box_height = ?, \
         landmarks = ?, score = ?, quality = ? WHERE id = ?",
    )
    .bind(embedding_to_blob(embedding))
    .bind(&face.model)
    .bind(f64::from(face.bbox.x))
    .bind(f64::from(face.bbox.y))
    .bind(f64::from(face.bbox.width))
    .bind(f64::from(face.bbox.height))
    .bind(serde_json::to_string(&face.landmarks).map_err(corrupt)?)
    .bind(f64::from(face.score))
    .bind(serde_json::to_string(&face.quality).map_err(corrupt)?)
    .bind(&face.id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    audit::record(&mut *tx, actor, "reembed_face", &face.id).await?;
    tx.commit().await?;
    Ok(true)
}
