//! Face rows: enrolled embeddings and where they came from.
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use sqlx::PgPool;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::convert::{at, id, new_uuid, text, uuid};
use super::{audit, outbox};
use crate::domain::{BBox, Point, Quality};
use crate::sealing::DataKeys;
use crate::store::{
    Crop, DeleteReason, FacePlace, FaceRecord, NewEvent, NewFace, Owner, Person, StoreError, StoreResult,
    StoredEmbedding, now, open_crop, open_embedding, seal_crop, seal_embedding,
};

/// The columns [`FaceRow`] reads.
pub(super) const COLUMNS: &str = "id, person_id, external_id, cluster_id, model, box_x, box_y, box_width, box_height, \
     landmarks, score, quality, created_at";

/// A face's columns as [`COLUMNS`] reads them.
#[derive(sqlx::FromRow)]
pub(super) struct FaceRow {
    id: Uuid,
    person_id: Option<Uuid>,
    external_id: Option<String>,
    cluster_id: Option<Uuid>,
    model: String,
    box_x: f32,
    box_y: f32,
    box_width: f32,
    box_height: f32,
    landmarks: Json<[Point; 5]>,
    score: f32,
    quality: Json<Quality>,
    created_at: OffsetDateTime,
}

impl From<FaceRow> for FaceRecord {
    fn from(r: FaceRow) -> Self {
        FaceRecord {
            id: id(r.id),
            person_id: r.person_id.map(id),
            external_id: r.external_id,
            cluster_id: r.cluster_id.map(id),
            bbox: BBox { x: r.box_x, y: r.box_y, width: r.box_width, height: r.box_height },
            landmarks: r.landmarks.0,
            score: r.score,
            quality: r.quality.0,
            model: r.model,
            created_at: text(r.created_at),
        }
    }
}

/// A statement under construction.
pub(super) type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds what an embedding run produces, in column order: `embedding` (as
/// stored), `model`, `box_x`, `box_y`, `box_width`, `box_height`,
/// `landmarks`, `score`, `quality` (inserts and re-embeddings alike).
pub(super) fn bind_embedded<'q>(q: PgQuery<'q>, r: &'q FaceRecord, stored: Vec<u8>) -> PgQuery<'q> {
    q.bind(stored)
        .bind(&r.model)
        .bind(r.bbox.x)
        .bind(r.bbox.y)
        .bind(r.bbox.width)
        .bind(r.bbox.height)
        .bind(Json(&r.landmarks))
        .bind(r.score)
        .bind(Json(&r.quality))
}

/// Writes one face row as it is (new enrollments and imports alike).
pub(super) async fn insert_record<'e, E: sqlx::PgExecutor<'e>>(
    exec: E,
    keys: &DataKeys,
    r: &FaceRecord,
    embedding: &[f32],
    source_sha256: Option<&str>,
) -> StoreResult<()> {
    let face = new_uuid(&r.id)?;
    let person = r.person_id.as_deref().map(new_uuid).transpose()?;
    let cluster = r.cluster_id.as_deref().map(new_uuid).transpose()?;
    let insert = sqlx::query(
        "INSERT INTO faces (id, person_id, embedding, model, box_x, box_y, box_width, box_height, landmarks, \
         score, quality, created_at, source_sha256, external_id, cluster_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(face)
    .bind(person);
    // Sealed under the id as it reads back (PostgreSQL's canonical form).
    let stored = seal_embedding(keys, &id(face), &r.model, embedding);
    let done = bind_embedded(insert, r, stored)
        .bind(at(&r.created_at)?)
        .bind(source_sha256)
        .bind(&r.external_id)
        .bind(cluster)
        .execute(exec)
        .await;
    match done {
        Ok(_) => Ok(()),
        // The person vanished (foreign key): report it as such.
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
            Err(StoreError::PersonNotFound(r.person_id.clone().unwrap_or_default()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Writes a new face (and its kept crop), for a person or in a cluster.
pub(super) async fn insert_face(
    tx: &mut sqlx::PgConnection,
    keys: &DataKeys,
    owner: Owner<'_>,
    new: &NewFace<'_>,
) -> StoreResult<FaceRecord> {
    if let Owner::Person(person_id) = owner
        && uuid(person_id).is_none()
    {
        return Err(StoreError::PersonNotFound(person_id.into()));
    }
    let record = new.record_in(owner);
    insert_record(&mut *tx, keys, &record, new.embedding, new.source_sha256).await?;
    if let Some(crop) = new.crop {
        let face = new_uuid(&record.id)?;
        sqlx::query("INSERT INTO face_crops (face_id, image, landmarks, created_at) VALUES ($1, $2, $3, $4)")
            .bind(face)
            .bind(seal_crop(keys, &id(face), &crop.png))
            .bind(Json(&crop.landmarks))
            .bind(at(&record.created_at)?)
            .execute(&mut *tx)
            .await?;
    }
    Ok(record)
}

pub(super) async fn add(
    pool: &PgPool,
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
    pool: &PgPool,
    keys: &DataKeys,
    person: &Person,
    new: &NewFace<'_>,
    actor: &str,
) -> StoreResult<FaceRecord> {
    let mut tx = pool.begin().await?;
    if !super::persons::insert(&mut *tx, person).await? {
        return Err(StoreError::Corrupt(format!("person {} exists already", person.id)));
    }
    let face = insert_face(&mut tx, keys, Owner::Person(&person.id), new).await?;
    audit::record(&mut *tx, actor, "create_person", &person.id).await?;
    audit::record(&mut *tx, actor, "enroll_face", &face.id).await?;
    outbox::emit(&mut *tx, &NewEvent::person_created(&person.id, &person.name, actor)).await?;
    outbox::emit(&mut *tx, &NewEvent::face_added(&face, actor)).await?;
    tx.commit().await?;
    Ok(face)
}

pub(super) async fn list(pool: &PgPool, person_id: &str) -> StoreResult<Vec<FaceRecord>> {
    let Some(p) = uuid(person_id) else { return Ok(Vec::new()) };
    let rows = sqlx::query_as::<_, FaceRow>(&format!("SELECT {COLUMNS} FROM faces WHERE person_id = $1 ORDER BY id"))
        .bind(p)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(FaceRecord::from).collect())
}

/// Deletes one face of a person. False when there is no such face.
pub(super) async fn delete(pool: &PgPool, person_id: &str, face_id: &str, actor: &str) -> StoreResult<bool> {
    let (Some(p), Some(f)) = (uuid(person_id), uuid(face_id)) else { return Ok(false) };
    let mut tx = pool.begin().await?;
    let done =
        sqlx::query("DELETE FROM faces WHERE id = $1 AND person_id = $2").bind(f).bind(p).execute(&mut *tx).await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    audit::record(&mut *tx, actor, "delete_face", face_id).await?;
    let gone = NewEvent::face_deleted(face_id, FacePlace::person(person_id), DeleteReason::Request, actor);
    outbox::emit(&mut *tx, &gone).await?;
    tx.commit().await?;
    Ok(true)
}

#[derive(sqlx::FromRow)]
pub(super) struct EmbeddingRow {
    id: Uuid,
    person_id: Uuid,
    model: String,
    embedding: Vec<u8>,
}

impl EmbeddingRow {
    pub(super) fn open(self, keys: &DataKeys) -> StoreResult<StoredEmbedding> {
        let face_id = id(self.id);
        Ok(StoredEmbedding {
            values: open_embedding(keys, &face_id, &self.model, &self.embedding)?,
            face_id,
            person_id: id(self.person_id),
            model: self.model,
        })
    }
}

/// One row an enrolled face (not the unassigned ones): its embedding by the
/// model bound as `$1`, own or kept beside; else its own (of another
/// model). Takes more conditions after `AND`.
pub(super) const EMBEDDING_OF_MODEL: &str = "SELECT f.id, f.person_id, COALESCE(e.model, f.model) AS model, \
     COALESCE(e.embedding, f.embedding) AS embedding FROM faces f \
     LEFT JOIN face_embeddings e ON e.face_id = f.id AND e.model = $1 WHERE f.person_id IS NOT NULL";

/// Every face's embedding, preferring `model`'s, row by row.
pub(super) fn embeddings<'a>(
    pool: &'a PgPool,
    keys: &'a DataKeys,
    model: &str,
) -> BoxStream<'a, StoreResult<StoredEmbedding>> {
    sqlx::query_as::<_, EmbeddingRow>(EMBEDDING_OF_MODEL)
        .bind(model.to_string())
        .fetch(pool)
        .map(move |row| row.map_err(StoreError::from).and_then(|r| r.open(keys)))
        .boxed()
}

/// The face's kept crop.
pub(super) async fn face_crop(pool: &PgPool, keys: &DataKeys, face_id: &str) -> StoreResult<Option<Crop>> {
    let Some(id) = uuid(face_id) else { return Ok(None) };
    let row: Option<(Vec<u8>, Json<[crate::domain::Point; 5]>)> =
        sqlx::query_as("SELECT image, landmarks FROM face_crops WHERE face_id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    row.map(|(stored, landmarks)| {
        Ok(Crop { png: open_crop(keys, &super::convert::id(id), stored)?, landmarks: landmarks.0 })
    })
    .transpose()
}

/// Every face record, by person.
pub(super) fn face_records(pool: &PgPool) -> BoxStream<'_, StoreResult<FaceRecord>> {
    // The query text lives as long as the stream: a static string.
    static QUERY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("SELECT {COLUMNS} FROM faces WHERE person_id IS NOT NULL ORDER BY person_id, id")
    });
    sqlx::query_as::<_, FaceRow>(QUERY.as_str())
        .fetch(pool)
        .map(|row| row.map(FaceRecord::from).map_err(StoreError::from))
        .boxed()
}

/// Creates one person per embedding, each with one face, in batched
/// transactions of arrays (one statement per table and batch).
pub(super) async fn bulk_enroll(
    pool: &PgPool,
    keys: &DataKeys,
    items: &[(String, Vec<f32>)],
    model: &str,
) -> StoreResult<Vec<String>> {
    let mut ids = Vec::with_capacity(items.len());
    let no_quality = Quality { face_size: 0.0, eye_distance: 0.0, sharpness: 0.0 };
    for batch in items.chunks(5_000) {
        let persons: Vec<Person> = batch.iter().map(|(name, _)| Person::new(name, None)).collect();
        let person_ids: Vec<Uuid> = persons.iter().map(|p| new_uuid(&p.id)).collect::<StoreResult<_>>()?;
        let face_ids: Vec<Uuid> =
            persons.iter().map(|_| new_uuid(&crate::domain::new_id())).collect::<StoreResult<_>>()?;
        let names: Vec<&str> = batch.iter().map(|(name, _)| name.as_str()).collect();
        let blobs: Vec<Vec<u8>> =
            batch.iter().zip(&face_ids).map(|((_, e), f)| seal_embedding(keys, &id(*f), model, e)).collect();
        let subjects: Vec<&str> = persons.iter().map(|p| p.id.as_str()).collect();
        let created = at(&now())?;
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO persons (id, name, created_at, updated_at) \
             SELECT id, name, $3, $3 FROM UNNEST($1::uuid[], $2::text[]) AS t(id, name)",
        )
        .bind(&person_ids)
        .bind(&names)
        .bind(created)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO faces (id, person_id, embedding, model, box_x, box_y, box_width, box_height, landmarks, \
             score, quality, created_at) SELECT f, p, e, $4, 0, 0, 0, 0, $5, 0, $6, $7 \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::bytea[]) AS t(f, p, e)",
        )
        .bind(&face_ids)
        .bind(&person_ids)
        .bind(&blobs)
        .bind(model)
        .bind(Json([[0.0f32; 2]; 5]))
        .bind(Json(no_quality))
        .bind(created)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO audit (at, actor, action, subject) SELECT $1, 'bulk', 'import_person', s FROM UNNEST($2::text[]) AS t(s)")
            .bind(created)
            .bind(&subjects)
            .execute(&mut *tx)
            .await?;
        let events: Vec<NewEvent> = persons.iter().map(|p| NewEvent::person_created(&p.id, &p.name, "bulk")).collect();
        outbox::emit_all(&mut tx, &events).await?;
        tx.commit().await?;
        ids.extend(persons.into_iter().map(|p| p.id));
    }
    Ok(ids)
}
