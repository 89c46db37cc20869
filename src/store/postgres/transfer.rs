//! Bulk operations of the admin commands: look-ups by photo hash, export and
//! import of persons with their embeddings, and re-embedding.
use sqlx::PgPool;

use super::convert::uuid;
use super::faces::{COLUMNS as FACE_COLUMNS, FaceRow, bind_embedded, insert_record};
use super::{audit, persons};
use crate::store::{FaceExport, FaceRecord, Person, StoreResult, blob_to_embedding};

/// Whether this person already has a face from the photo with this hash.
pub(super) async fn has_face_from(pool: &PgPool, person_id: &str, source_sha256: &str) -> StoreResult<bool> {
    let Some(p) = uuid(person_id) else { return Ok(false) };
    let row = sqlx::query("SELECT 1 FROM faces WHERE person_id = $1 AND source_sha256 = $2 LIMIT 1")
        .bind(p)
        .bind(source_sha256)
        .fetch_optional(pool)
        .await?;
    Ok(row.is_some())
}

/// A face row with what export and re-embedding read besides.
#[derive(sqlx::FromRow)]
struct FullRow {
    #[sqlx(flatten)]
    face: FaceRow,
    source_sha256: Option<String>,
    #[sqlx(default)]
    embedding: Vec<u8>,
}

/// A person's faces with their embeddings, for export.
pub(super) async fn export_faces(pool: &PgPool, person_id: &str) -> StoreResult<Vec<FaceExport>> {
    let Some(p) = uuid(person_id) else { return Ok(Vec::new()) };
    let rows = sqlx::query_as::<_, FullRow>(&format!(
        "SELECT {FACE_COLUMNS}, source_sha256, embedding FROM faces WHERE person_id = $1 ORDER BY id"
    ))
    .bind(p)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let embedding = blob_to_embedding(&r.embedding)?;
            Ok(FaceExport { face: r.face.into(), source_sha256: r.source_sha256, embedding })
        })
        .collect()
}

/// Stores an exported person with their faces, ids kept, in one
/// transaction. False (and nothing written) when the person id exists.
pub(super) async fn import_person(
    pool: &PgPool,
    person: &Person,
    faces: &[FaceExport],
    actor: &str,
) -> StoreResult<bool> {
    let mut tx = pool.begin().await?;
    if !persons::insert(&mut *tx, person).await? {
        return Ok(false);
    }
    for f in faces {
        let record = FaceRecord { person_id: person.id.clone(), ..f.face.clone() };
        insert_record(&mut *tx, &record, &f.embedding, f.source_sha256.as_deref()).await?;
    }
    audit::record(&mut *tx, actor, "import_person", &person.id).await?;
    tx.commit().await?;
    Ok(true)
}

/// Faces embedded by another model than `model`, with their photo hashes.
pub(super) async fn faces_not_of_model(pool: &PgPool, model: &str) -> StoreResult<Vec<(FaceRecord, Option<String>)>> {
    let rows = sqlx::query_as::<_, FullRow>(&format!(
        "SELECT {FACE_COLUMNS}, source_sha256 FROM faces WHERE model <> $1 ORDER BY person_id, id"
    ))
    .bind(model)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.face.into(), r.source_sha256)).collect())
}

/// Replaces a face's embedding (and where the new model found the face).
pub(super) async fn replace_embedding(
    pool: &PgPool,
    face: &FaceRecord,
    embedding: &[f32],
    actor: &str,
) -> StoreResult<bool> {
    let Some(f) = uuid(&face.id) else { return Ok(false) };
    let mut tx = pool.begin().await?;
    let update = sqlx::query(
        "UPDATE faces SET embedding = $1, model = $2, box_x = $3, box_y = $4, box_width = $5, box_height = $6, \
         landmarks = $7, score = $8, quality = $9 WHERE id = $10",
    );
    let done = bind_embedded(update, face, embedding).bind(f).execute(&mut *tx).await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    audit::record(&mut *tx, actor, "reembed_face", &face.id).await?;
    tx.commit().await?;
    Ok(true)
}
