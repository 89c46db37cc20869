//! Bulk operations of the admin commands: look-ups by photo hash, export and
//! import of persons with their embeddings, and the faces a re-embedding
//! still has to do.
use sqlx::{Row, SqlitePool};

use super::faces::{COLUMNS as FACE_COLUMNS, face as face_row, insert_record};
use super::{audit, outbox, persons};
use crate::sealing::DataKeys;
use crate::store::{FaceExport, FaceRecord, NewEvent, Person, StoreResult, open_embedding};

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
pub(super) async fn export_faces(pool: &SqlitePool, keys: &DataKeys, person_id: &str) -> StoreResult<Vec<FaceExport>> {
    let rows = sqlx::query(&format!(
        "SELECT {FACE_COLUMNS}, source_sha256, embedding FROM faces WHERE person_id = ? ORDER BY id"
    ))
    .bind(person_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let blob: &[u8] = r.try_get("embedding")?;
            let face = face_row(r)?;
            Ok(FaceExport {
                embedding: open_embedding(keys, &face.id, &face.model, blob)?,
                face,
                source_sha256: r.try_get("source_sha256")?,
            })
        })
        .collect()
}

/// Stores an exported person with their faces, ids kept, in one
/// transaction. False (and nothing written) when the person id exists.
pub(super) async fn import_person(
    pool: &SqlitePool,
    keys: &DataKeys,
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
    outbox::emit(&mut *tx, &NewEvent::person_created(&person.id, &person.name, actor)).await?;
    for f in faces {
        let record = FaceRecord { person_id: Some(person.id.clone()), cluster_id: None, ..f.face.clone() };
        insert_record(&mut *tx, keys, &record, &f.embedding, f.source_sha256.as_deref()).await?;
        outbox::emit(&mut *tx, &NewEvent::face_added(&record, actor)).await?;
    }
    audit::record(&mut *tx, actor, "import_person", &person.id).await?;
    tx.commit().await?;
    Ok(true)
}

/// Faces with no embedding of `model` (neither their own nor one kept
/// beside), with their photo hashes.
pub(super) async fn faces_lacking(pool: &SqlitePool, model: &str) -> StoreResult<Vec<(FaceRecord, Option<String>)>> {
    let rows = sqlx::query(&format!(
        "SELECT {FACE_COLUMNS}, source_sha256 FROM faces WHERE model <> ? AND NOT EXISTS \
         (SELECT 1 FROM face_embeddings e WHERE e.face_id = faces.id AND e.model = ?) ORDER BY person_id, id"
    ))
    .bind(model)
    .bind(model)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| Ok((face_row(r)?, r.try_get("source_sha256")?))).collect()
}
