//! Faces without a person: kept in clusters, moved to persons, merged, purged.
//! Every write is one transaction with an audit record per face it touches
//! (per cluster for a relabelling), which replicas follow. Concurrent writers
//! are ordered by the rows' locks: of two assignments of one cluster, the
//! second finds its faces taken and moves none.
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use sqlx::PgPool;
use uuid::Uuid;

use super::convert::{at, id, new_uuid, uuid, uuids};
use super::faces::{COLUMNS, FaceRow, insert_face};
use super::{audit, outbox};
use crate::sealing::DataKeys;
use crate::store::{
    AssignTo, DeleteReason, FacePlace, FaceRecord, NewEvent, NewFace, Owner, PersonRef, Regroup, StoreError,
    StoreResult, UnassignedEmbedding, now, open_embedding,
};

/// One audit record per subject, in one statement.
async fn record_each(tx: &mut sqlx::PgConnection, actor: &str, action: &str, subjects: &[String]) -> StoreResult<()> {
    sqlx::query("INSERT INTO audit (at, actor, action, subject) SELECT $1, $2, $3, s FROM UNNEST($4::text[]) AS t(s)")
        .bind(at(&now())?)
        .bind(actor)
        .bind(action)
        .bind(subjects)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The unassigned faces of a cluster.
async fn cluster_size(tx: &mut sqlx::PgConnection, cluster: &str) -> StoreResult<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM faces WHERE cluster_id = $1 AND person_id IS NULL")
        .bind(new_uuid(cluster)?)
        .fetch_one(&mut *tx)
        .await?)
}

/// Where a face is now, its row locked until the transaction ends; None when absent.
async fn place_of(tx: &mut sqlx::PgConnection, face: Uuid) -> StoreResult<Option<FacePlace>> {
    let row: Option<(Option<Uuid>, Option<Uuid>)> =
        sqlx::query_as("SELECT person_id, cluster_id FROM faces WHERE id = $1 FOR UPDATE")
            .bind(face)
            .fetch_optional(&mut *tx)
            .await?;
    Ok(row.map(|(p, c)| FacePlace { person_id: p.map(id), cluster_id: c.map(id) }))
}

pub(super) async fn get(pool: &PgPool, face_id: &str) -> StoreResult<Option<FaceRecord>> {
    let Some(f) = uuid(face_id) else { return Ok(None) };
    let row = sqlx::query_as::<_, FaceRow>(&format!("SELECT {COLUMNS} FROM faces WHERE id = $1"))
        .bind(f)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(FaceRecord::from))
}

const MERGE: &str = "UPDATE faces SET cluster_id = $1 WHERE cluster_id = $2 AND person_id IS NULL";
const MOVE: &str = "UPDATE faces SET cluster_id = $1 WHERE id = $2 AND person_id IS NULL";

pub(super) async fn keep(
    pool: &PgPool,
    keys: &DataKeys,
    faces: &[(NewFace<'_>, String)],
    regroups: &[Regroup],
    actor: &str,
) -> StoreResult<Vec<FaceRecord>> {
    let mut tx = pool.begin().await?;
    let mut out = Vec::with_capacity(faces.len());
    for (new, cluster) in faces {
        new_uuid(cluster)?;
        let record = insert_face(&mut tx, keys, Owner::Cluster(cluster), new).await?;
        audit::record(&mut *tx, actor, "keep_face", &record.id).await?;
        outbox::emit(&mut *tx, &NewEvent::face_added(&record, actor)).await?;
        let size = cluster_size(&mut tx, cluster).await?;
        outbox::emit(&mut *tx, &NewEvent::cluster_changed(cluster, size, Some(&record.id), None)).await?;
        out.push(record);
    }
    for step in regroups {
        let (sql, to, subject, action) = match step {
            Regroup::Merge { from, into } => (MERGE, into, from, "merge_cluster"),
            Regroup::Move { face, to } => (MOVE, to, face, "regroup_face"),
        };
        let before = match step {
            Regroup::Move { face, .. } => place_of(&mut tx, new_uuid(face)?).await?,
            Regroup::Merge { .. } => None,
        };
        sqlx::query(sql).bind(new_uuid(to)?).bind(new_uuid(subject)?).execute(&mut *tx).await?;
        audit::record(&mut *tx, actor, action, subject).await?;
        let size = cluster_size(&mut tx, to).await?;
        outbox::emit_all(&mut tx, &NewEvent::regrouped(step, before, size, actor)).await?;
    }
    tx.commit().await?;
    Ok(out)
}

pub(super) async fn has_external_id(pool: &PgPool, external_id: &str) -> StoreResult<bool> {
    let row: Option<i32> = sqlx::query_scalar("SELECT 1 FROM faces WHERE external_id = $1 LIMIT 1")
        .bind(external_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.is_some())
}

pub(super) async fn list(pool: &PgPool, limit: u32, cursor: Option<&str>) -> StoreResult<Vec<FaceRecord>> {
    let after = cursor.and_then(uuid).unwrap_or(Uuid::nil());
    let rows = sqlx::query_as::<_, FaceRow>(&format!(
        "SELECT {COLUMNS} FROM faces WHERE person_id IS NULL AND id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(FaceRecord::from).collect())
}

pub(super) async fn delete(pool: &PgPool, face_id: &str, actor: &str) -> StoreResult<bool> {
    let Some(f) = uuid(face_id) else { return Ok(false) };
    let mut tx = pool.begin().await?;
    let Some(place) = place_of(&mut tx, f).await? else { return Ok(false) };
    sqlx::query("DELETE FROM faces WHERE id = $1").bind(f).execute(&mut *tx).await?;
    audit::record(&mut *tx, actor, "delete_face", face_id).await?;
    outbox::emit(&mut *tx, &NewEvent::face_deleted(face_id, place, DeleteReason::Request, actor)).await?;
    tx.commit().await?;
    Ok(true)
}

/// Locks the persons' rows (a deletion waits for this transaction); the
/// first of them that does not exist.
async fn first_absent(tx: &mut sqlx::PgConnection, ids: &[&str]) -> StoreResult<Option<String>> {
    let found: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM persons WHERE id = ANY($1) FOR UPDATE")
        .bind(uuids(ids))
        .fetch_all(&mut *tx)
        .await?;
    Ok(ids.iter().find(|i| uuid(i).is_none_or(|u| !found.contains(&u))).map(|i| i.to_string()))
}

pub(super) async fn move_face(
    pool: &PgPool,
    face_id: &str,
    to: Owner<'_>,
    actor: &str,
) -> StoreResult<Option<FaceRecord>> {
    let Some(f) = uuid(face_id) else { return Ok(None) };
    let mut tx = pool.begin().await?;
    let (person, cluster) = match to {
        Owner::Person(p) => {
            if let Some(absent) = first_absent(&mut tx, &[p]).await? {
                return Err(StoreError::PersonNotFound(absent));
            }
            (Some(new_uuid(p)?), None)
        }
        Owner::Cluster(c) => (None, Some(new_uuid(c)?)),
    };
    let Some(from) = place_of(&mut tx, f).await? else { return Ok(None) };
    let row = sqlx::query_as::<_, FaceRow>(&format!(
        "UPDATE faces SET person_id = $1, cluster_id = $2 WHERE id = $3 RETURNING {COLUMNS}"
    ))
    .bind(person)
    .bind(cluster)
    .bind(f)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    audit::record(&mut *tx, actor, "move_face", face_id).await?;
    let to = FacePlace { person_id: person.map(id), cluster_id: cluster.map(id) };
    let cluster = to.cluster_id.clone();
    outbox::emit(&mut *tx, &NewEvent::face_moved(face_id, from, to, actor)).await?;
    if let Some(c) = &cluster {
        let size = cluster_size(&mut tx, c).await?;
        outbox::emit(&mut *tx, &NewEvent::cluster_changed(c, size, Some(face_id), None)).await?;
    }
    tx.commit().await?;
    Ok(Some(FaceRecord::from(row)))
}

pub(super) async fn assign(pool: &PgPool, cluster_id: &str, to: AssignTo<'_>, actor: &str) -> StoreResult<Vec<String>> {
    let Some(cluster) = uuid(cluster_id) else { return Ok(Vec::new()) };
    let mut tx = pool.begin().await?;
    let person = match to {
        AssignTo::New(p) => {
            if !super::persons::insert(&mut *tx, p).await? {
                return Err(StoreError::Corrupt(format!("person {} exists already", p.id)));
            }
            audit::record(&mut *tx, actor, "create_person", &p.id).await?;
            outbox::emit(&mut *tx, &NewEvent::person_created(&p.id, &p.name, actor)).await?;
            p.id.as_str()
        }
        AssignTo::Existing(p) => match first_absent(&mut tx, &[p]).await? {
            Some(absent) => return Err(StoreError::PersonNotFound(absent)),
            None => p,
        },
    };
    let moved: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE faces SET person_id = $1, cluster_id = NULL WHERE cluster_id = $2 AND person_id IS NULL RETURNING id",
    )
    .bind(new_uuid(person)?)
    .bind(cluster)
    .fetch_all(&mut *tx)
    .await?;
    let moved: Vec<String> = moved.into_iter().map(id).collect();
    if moved.is_empty() {
        return Ok(moved); // rolled back: no person is created for no face
    }
    record_each(&mut tx, actor, "assign_face", &moved).await?;
    let events: Vec<NewEvent> = moved
        .iter()
        .map(|f| NewEvent::face_moved(f, FacePlace::cluster(cluster_id), FacePlace::person(person), actor))
        .collect();
    outbox::emit_all(&mut tx, &events).await?;
    tx.commit().await?;
    Ok(moved)
}

pub(super) async fn merge_persons(pool: &PgPool, into: &str, from: &[&str], actor: &str) -> StoreResult<Vec<String>> {
    let mut tx = pool.begin().await?;
    let all: Vec<&str> = std::iter::once(into).chain(from.iter().copied()).collect();
    if let Some(absent) = first_absent(&mut tx, &all).await? {
        return Err(StoreError::PersonNotFound(absent));
    }
    let from_ids = uuids(from);
    // The persons' rows are locked: their faces are all there is to move.
    let rows: Vec<(Uuid, Uuid)> =
        sqlx::query_as("SELECT id, person_id FROM faces WHERE person_id = ANY($1) ORDER BY person_id, id")
            .bind(&from_ids)
            .fetch_all(&mut *tx)
            .await?;
    sqlx::query("UPDATE faces SET person_id = $1 WHERE person_id = ANY($2)")
        .bind(new_uuid(into)?)
        .bind(&from_ids)
        .execute(&mut *tx)
        .await?;
    let moved: Vec<String> = rows.iter().map(|(f, _)| id(*f)).collect();
    record_each(&mut tx, actor, "move_face", &moved).await?;
    let names: Vec<(Uuid, String)> = sqlx::query_as("DELETE FROM persons WHERE id = ANY($1) RETURNING id, name")
        .bind(&from_ids)
        .fetch_all(&mut *tx)
        .await?;
    let deleted: Vec<String> = from.iter().map(|s| s.to_string()).collect();
    record_each(&mut tx, actor, "delete_person", &deleted).await?;
    let mut events: Vec<NewEvent> = rows
        .iter()
        .map(|(f, p)| NewEvent::face_moved(&id(*f), FacePlace::person(&id(*p)), FacePlace::person(into), actor))
        .collect();
    let merged: Vec<PersonRef> = from
        .iter()
        .map(|f| PersonRef {
            id: f.to_string(),
            name: names.iter().find(|(u, _)| Some(*u) == uuid(f)).map(|(_, n)| n.clone()).unwrap_or_default(),
        })
        .collect();
    let name: String =
        sqlx::query_scalar("SELECT name FROM persons WHERE id = $1").bind(new_uuid(into)?).fetch_one(&mut *tx).await?;
    events.push(NewEvent::persons_merged(into, &name, merged, &moved, actor));
    outbox::emit_all(&mut tx, &events).await?;
    tx.commit().await?;
    Ok(moved)
}

pub(super) async fn purge(pool: &PgPool, before: &str, actor: &str) -> StoreResult<Vec<String>> {
    let mut tx = pool.begin().await?;
    let rows: Vec<(Uuid, Option<Uuid>)> =
        sqlx::query_as("DELETE FROM faces WHERE person_id IS NULL AND created_at < $1 RETURNING id, cluster_id")
            .bind(at(before)?)
            .fetch_all(&mut *tx)
            .await?;
    let gone: Vec<String> = rows.iter().map(|(f, _)| id(*f)).collect();
    if !gone.is_empty() {
        record_each(&mut tx, actor, "purge_face", &gone).await?;
        let events: Vec<NewEvent> = rows
            .iter()
            .map(|(f, c)| {
                let place = FacePlace { person_id: None, cluster_id: c.map(id) };
                NewEvent::face_deleted(&id(*f), place, DeleteReason::Retention, actor)
            })
            .collect();
        outbox::emit_all(&mut tx, &events).await?;
    }
    tx.commit().await?;
    Ok(gone)
}

/// One row an unassigned face, preferring the embedding by the model bound as `$1`.
const UNASSIGNED_OF_MODEL: &str = "SELECT f.id, f.cluster_id, f.external_id, COALESCE(e.model, f.model) AS model, \
     COALESCE(e.embedding, f.embedding) AS embedding FROM faces f \
     LEFT JOIN face_embeddings e ON e.face_id = f.id AND e.model = $1 WHERE f.person_id IS NULL";

#[derive(sqlx::FromRow)]
struct UnassignedRow {
    id: Uuid,
    cluster_id: Option<Uuid>,
    external_id: Option<String>,
    model: String,
    embedding: Vec<u8>,
}

impl UnassignedRow {
    fn open(self, keys: &DataKeys) -> StoreResult<UnassignedEmbedding> {
        let face_id = id(self.id);
        Ok(UnassignedEmbedding {
            values: open_embedding(keys, &face_id, &self.model, &self.embedding)?,
            face_id,
            cluster_id: id(self.cluster_id.unwrap_or(self.id)),
            external_id: self.external_id,
            model: self.model,
        })
    }
}

pub(super) fn embeddings<'a>(
    pool: &'a PgPool,
    keys: &'a DataKeys,
    model: &str,
) -> BoxStream<'a, StoreResult<UnassignedEmbedding>> {
    sqlx::query_as::<_, UnassignedRow>(UNASSIGNED_OF_MODEL)
        .bind(model.to_string())
        .fetch(pool)
        .map(move |row| row.map_err(StoreError::from).and_then(|r| r.open(keys)))
        .boxed()
}

pub(super) async fn embeddings_of(
    pool: &PgPool,
    keys: &DataKeys,
    face_ids: &[&str],
    model: &str,
) -> StoreResult<Vec<UnassignedEmbedding>> {
    let sql = format!("{UNASSIGNED_OF_MODEL} AND f.id = ANY($2)");
    let rows = sqlx::query_as::<_, UnassignedRow>(&sql).bind(model).bind(uuids(face_ids)).fetch_all(pool).await?;
    rows.into_iter().map(|r| r.open(keys)).collect()
}
