//! Bulk operations of the admin commands: look-ups by photo hash, export and
//! import of persons with their embeddings, and the faces a re-embedding
//! still has to do.
use sqlx::PgPool;

use super::convert::uuid;
use super::faces::{COLUMNS as FACE_COLUMNS, FaceRow, insert_record};
use super::{audit, outbox, persons};
use crate::sealing::DataKeys;
use crate::store::{FaceExport, FaceRecord, NewEvent, Person, StoreResult, open_embedding};

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
pub(super) async fn export_faces(pool: &PgPool, keys: &DataKeys, person_id: &str) -> StoreResult<Vec<FaceExport>> {
    let Some(p) = uuid(person_id) else { return Ok(Vec::new()) };
    let rows = sqlx::query_as::<_, FullRow>(&format!(
        "SELECT {FACE_COLUMNS}, source_sha256, embedding FROM faces WHERE person_id = $1 ORDER BY id"
    ))
    .bind(p)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let face: FaceRecord = r.face.into();
            let embedding = open_embedding(keys, &face.id, &face.model, &r.embedding)?;
            Ok(FaceExport { face, source_sha256: r.source_sha256, embedding })
        })
        .collect()
}

/// Stores an exported person with their faces, ids kept, in one
/// transaction. False (and nothing written) when the person id exists.
pub(super) async fn import_person(
    pool: &PgPool,
    keys: &DataKeys,
    person: &Person,
    faces: &[FaceExport],
    actor: &str,
) -> StoreResult<bool> {
    let mut tx = pool.begin().await?;
    if !persons::insert(&mut *tx, person).await? {
        return Ok(false);
    }
    let mut events = vec![NewEvent::person_created(&person.id, &person.name, actor)];
    for f in faces {
        let record = FaceRecord { person_id: Some(person.id.clone()), cluster_id: None, ..f.face.clone() };
        insert_record(&mut *tx, keys, &record, &f.embedding, f.source_sha256.as_deref()).await?;
        events.push(NewEvent::face_added(&record, actor));
    }
    outbox::emit_all(&mut tx, &events).await?;
    audit::record(&mut *tx, actor, "import_person", &person.id).await?;
    tx.commit().await?;
    Ok(true)
}

/// Faces with no embedding of `model` (neither their own nor one kept
/// beside), with their photo hashes.
pub(super) async fn faces_lacking(pool: &PgPool, model: &str) -> StoreResult<Vec<(FaceRecord, Option<String>)>> {
    let rows = sqlx::query_as::<_, FullRow>(&format!(
        "SELECT {FACE_COLUMNS}, source_sha256 FROM faces WHERE model <> $1 AND NOT EXISTS \
         (SELECT 1 FROM face_embeddings e WHERE e.face_id = faces.id AND e.model = $1) ORDER BY person_id, id"
    ))
    .bind(model)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.face.into(), r.source_sha256)).collect())
}
