//! Faces without a person: kept in clusters, moved to persons, merged, purged.
//! Every write is one transaction with an audit record per face it touches
//! (per cluster for a relabelling), which replicas follow.
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use super::faces::{COLUMNS, face, insert_face};
use super::{audit, outbox, persons};
use crate::sealing::DataKeys;
use crate::store::{
    AssignTo, DeleteReason, FacePlace, FaceRecord, NewEvent, NewFace, Owner, PersonRef, Regroup, StoreError,
    StoreResult, UnassignedEmbedding, open_embedding,
};

pub(super) async fn get(pool: &SqlitePool, face_id: &str) -> StoreResult<Option<FaceRecord>> {
    let row =
        sqlx::query(&format!("SELECT {COLUMNS} FROM faces WHERE id = ?")).bind(face_id).fetch_optional(pool).await?;
    row.as_ref().map(face).transpose()
}

/// The unassigned faces of a cluster.
async fn cluster_size(tx: &mut sqlx::SqliteConnection, cluster: &str) -> StoreResult<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM faces WHERE cluster_id = ? AND person_id IS NULL")
        .bind(cluster)
        .fetch_one(&mut *tx)
        .await?)
}

/// Where a face is now; None when absent.
async fn place_of(tx: &mut sqlx::SqliteConnection, face_id: &str) -> StoreResult<Option<FacePlace>> {
    let row = sqlx::query("SELECT person_id, cluster_id FROM faces WHERE id = ?")
        .bind(face_id)
        .fetch_optional(&mut *tx)
        .await?;
    row.map(|r| Ok(FacePlace { person_id: r.try_get("person_id")?, cluster_id: r.try_get("cluster_id")? })).transpose()
}

const MERGE: &str = "UPDATE faces SET cluster_id = ? WHERE cluster_id = ? AND person_id IS NULL";
const MOVE: &str = "UPDATE faces SET cluster_id = ? WHERE id = ? AND person_id IS NULL";

pub(super) async fn keep(
    pool: &SqlitePool,
    keys: &DataKeys,
    faces: &[(NewFace<'_>, String)],
    regroups: &[Regroup],
    actor: &str,
) -> StoreResult<Vec<FaceRecord>> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut out = Vec::with_capacity(faces.len());
    for (new, cluster) in faces {
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
            Regroup::Move { face, .. } => place_of(&mut tx, face).await?,
            Regroup::Merge { .. } => None,
        };
        sqlx::query(sql).bind(to).bind(subject).execute(&mut *tx).await?;
        audit::record(&mut *tx, actor, action, subject).await?;
        let size = cluster_size(&mut tx, to).await?;
        outbox::emit_all(&mut tx, &NewEvent::regrouped(step, before, size, actor)).await?;
    }
    tx.commit().await?;
    Ok(out)
}

pub(super) async fn has_external_id(pool: &SqlitePool, external_id: &str) -> StoreResult<bool> {
    let row =
        sqlx::query("SELECT 1 FROM faces WHERE external_id = ? LIMIT 1").bind(external_id).fetch_optional(pool).await?;
    Ok(row.is_some())
}

pub(super) async fn list(pool: &SqlitePool, limit: u32, cursor: Option<&str>) -> StoreResult<Vec<FaceRecord>> {
    let rows =
        sqlx::query(&format!("SELECT {COLUMNS} FROM faces WHERE person_id IS NULL AND id > ? ORDER BY id LIMIT ?"))
            .bind(cursor.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
    rows.iter().map(face).collect()
}

pub(super) async fn delete(pool: &SqlitePool, face_id: &str, actor: &str) -> StoreResult<bool> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let Some(place) = place_of(&mut tx, face_id).await? else { return Ok(false) };
    sqlx::query("DELETE FROM faces WHERE id = ?").bind(face_id).execute(&mut *tx).await?;
    audit::record(&mut *tx, actor, "delete_face", face_id).await?;
    outbox::emit(&mut *tx, &NewEvent::face_deleted(face_id, place, DeleteReason::Request, actor)).await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn move_face(
    pool: &SqlitePool,
    face_id: &str,
    to: Owner<'_>,
    actor: &str,
) -> StoreResult<Option<FaceRecord>> {
    let (person, cluster) = to.columns();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    if let Some(p) = &person
        && !persons::exists(&mut *tx, p).await?
    {
        return Err(StoreError::PersonNotFound(p.clone()));
    }
    let Some(from) = place_of(&mut tx, face_id).await? else { return Ok(None) };
    sqlx::query("UPDATE faces SET person_id = ?, cluster_id = ? WHERE id = ?")
        .bind(&person)
        .bind(&cluster)
        .bind(face_id)
        .execute(&mut *tx)
        .await?;
    audit::record(&mut *tx, actor, "move_face", face_id).await?;
    let to = FacePlace { person_id: person.clone(), cluster_id: cluster.clone() };
    outbox::emit(&mut *tx, &NewEvent::face_moved(face_id, from, to, actor)).await?;
    if let Some(c) = &cluster {
        let size = cluster_size(&mut tx, c).await?;
        outbox::emit(&mut *tx, &NewEvent::cluster_changed(c, size, Some(face_id), None)).await?;
    }
    let row =
        sqlx::query(&format!("SELECT {COLUMNS} FROM faces WHERE id = ?")).bind(face_id).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(Some(face(&row)?))
}

pub(super) async fn assign(
    pool: &SqlitePool,
    cluster_id: &str,
    to: AssignTo<'_>,
    actor: &str,
) -> StoreResult<Vec<String>> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let person = match to {
        AssignTo::New(p) => {
            persons::insert(&mut *tx, p).await?;
            audit::record(&mut *tx, actor, "create_person", &p.id).await?;
            outbox::emit(&mut *tx, &NewEvent::person_created(&p.id, &p.name, actor)).await?;
            p.id.as_str()
        }
        AssignTo::Existing(id) if persons::exists(&mut *tx, id).await? => id,
        AssignTo::Existing(id) => return Err(StoreError::PersonNotFound(id.into())),
    };
    let moved: Vec<String> = sqlx::query_scalar(
        "UPDATE faces SET person_id = ?, cluster_id = NULL WHERE cluster_id = ? AND person_id IS NULL RETURNING id",
    )
    .bind(person)
    .bind(cluster_id)
    .fetch_all(&mut *tx)
    .await?;
    if moved.is_empty() {
        return Ok(moved); // rolled back: no person is created for no face
    }
    for id in &moved {
        audit::record(&mut *tx, actor, "assign_face", id).await?;
        let moved = NewEvent::face_moved(id, FacePlace::cluster(cluster_id), FacePlace::person(person), actor);
        outbox::emit(&mut *tx, &moved).await?;
    }
    tx.commit().await?;
    Ok(moved)
}

pub(super) async fn merge_persons(
    pool: &SqlitePool,
    into: &str,
    from: &[&str],
    actor: &str,
) -> StoreResult<Vec<String>> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for id in std::iter::once(&into).chain(from) {
        if !persons::exists(&mut *tx, id).await? {
            return Err(StoreError::PersonNotFound(id.to_string()));
        }
    }
    let mut moved = Vec::new();
    let mut merged = Vec::new();
    for id in from {
        let faces: Vec<String> = sqlx::query_scalar("UPDATE faces SET person_id = ? WHERE person_id = ? RETURNING id")
            .bind(into)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        for f in &faces {
            audit::record(&mut *tx, actor, "move_face", f).await?;
            outbox::emit(&mut *tx, &NewEvent::face_moved(f, FacePlace::person(id), FacePlace::person(into), actor))
                .await?;
        }
        moved.extend(faces);
        let name: String =
            sqlx::query_scalar("DELETE FROM persons WHERE id = ? RETURNING name").bind(id).fetch_one(&mut *tx).await?;
        audit::record(&mut *tx, actor, "delete_person", id).await?;
        merged.push(PersonRef { id: id.to_string(), name });
    }
    let name: String =
        sqlx::query_scalar("SELECT name FROM persons WHERE id = ?").bind(into).fetch_one(&mut *tx).await?;
    outbox::emit(&mut *tx, &NewEvent::persons_merged(into, &name, merged, &moved, actor)).await?;
    tx.commit().await?;
    Ok(moved)
}

pub(super) async fn purge(pool: &SqlitePool, before: &str, actor: &str) -> StoreResult<Vec<String>> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let rows = sqlx::query("DELETE FROM faces WHERE person_id IS NULL AND created_at < ? RETURNING id, cluster_id")
        .bind(before)
        .fetch_all(&mut *tx)
        .await?;
    let mut gone = Vec::with_capacity(rows.len());
    for r in rows {
        let (id, cluster): (String, Option<String>) = (r.try_get("id")?, r.try_get("cluster_id")?);
        audit::record(&mut *tx, actor, "purge_face", &id).await?;
        let place = FacePlace { person_id: None, cluster_id: cluster };
        outbox::emit(&mut *tx, &NewEvent::face_deleted(&id, place, DeleteReason::Retention, actor)).await?;
        gone.push(id);
    }
    tx.commit().await?;
    Ok(gone)
}

/// One row an unassigned face, preferring the embedding by the model bound first.
const UNASSIGNED_OF_MODEL: &str = "SELECT f.id, f.cluster_id, f.external_id, COALESCE(e.model, f.model) AS model, \
     COALESCE(e.embedding, f.embedding) AS embedding FROM faces f \
     LEFT JOIN face_embeddings e ON e.face_id = f.id AND e.model = ? WHERE f.person_id IS NULL";

fn unassigned_embedding(keys: &DataKeys, r: SqliteRow) -> StoreResult<UnassignedEmbedding> {
    let blob: &[u8] = r.try_get("embedding")?;
    let (face_id, model): (String, String) = (r.try_get("id")?, r.try_get("model")?);
    let cluster_id: Option<String> = r.try_get("cluster_id")?;
    Ok(UnassignedEmbedding {
        cluster_id: cluster_id.unwrap_or_else(|| face_id.clone()),
        values: open_embedding(keys, &face_id, &model, blob)?,
        face_id,
        external_id: r.try_get("external_id")?,
        model,
    })
}

pub(super) fn embeddings<'a>(
    pool: &'a SqlitePool,
    keys: &'a DataKeys,
    model: &str,
) -> BoxStream<'a, StoreResult<UnassignedEmbedding>> {
    sqlx::query(UNASSIGNED_OF_MODEL)
        .bind(model.to_string())
        .fetch(pool)
        .map(move |row| row.map_err(StoreError::from).and_then(|r| unassigned_embedding(keys, r)))
        .boxed()
}

pub(super) async fn embeddings_of(
    pool: &SqlitePool,
    keys: &DataKeys,
    face_ids: &[&str],
    model: &str,
) -> StoreResult<Vec<UnassignedEmbedding>> {
    let mut out = Vec::new();
    for chunk in face_ids.chunks(500) {
        let sql = format!("{UNASSIGNED_OF_MODEL} AND f.id IN ({})", vec!["?"; chunk.len()].join(","));
        let mut q = sqlx::query(&sql).bind(model);
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(pool).await? {
            out.push(unassigned_embedding(keys, row)?);
        }
    }
    Ok(out)
}
