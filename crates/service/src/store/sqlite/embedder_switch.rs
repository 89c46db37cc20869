//! Embeddings kept beside a face's own while a gallery moves to another
//! embedder (`face_embeddings`): stored, counted, switched with the faces'
//! own in one transaction, and pruned. A face never has a beside embedding
//! of its own model.
use sqlx::{Row, SqlitePool};

use super::audit;
use crate::sealing::DataKeys;
use crate::store::{ModelCount, StoreResult, Switched, now, seal_embedding};

/// Keeps `embedding` as the face's embedding by `model` beside its own
/// (replacing an earlier one). False when the face is absent or its own
/// embedding is already of `model`.
pub(super) async fn put(
    pool: &SqlitePool,
    keys: &DataKeys,
    face_id: &str,
    model: &str,
    embedding: &[f32],
    actor: &str,
) -> StoreResult<bool> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "INSERT INTO face_embeddings (face_id, model, embedding, created_at) \
         SELECT id, ?, ?, ? FROM faces WHERE id = ? AND model <> ? \
         ON CONFLICT (face_id, model) DO UPDATE SET embedding = excluded.embedding, created_at = excluded.created_at",
    )
    .bind(model)
    .bind(seal_embedding(keys, face_id, model, embedding))
    .bind(now())
    .bind(face_id)
    .bind(model)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    // Followers re-read the face (their model's embedding may be this one).
    audit::record(&mut *tx, actor, "reembed_face", face_id).await?;
    tx.commit().await?;
    Ok(true)
}

/// Makes `model` the own model of every face that has an embedding of it
/// beside, keeping the previous own embedding beside in its place; in one
/// transaction. Refused (nothing changed) when faces lack `model` and
/// `force` is not given.
pub(super) async fn switch(pool: &SqlitePool, model: &str, force: bool, actor: &str) -> StoreResult<Switched> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(
        "INSERT INTO face_embeddings (face_id, model, embedding, created_at) \
         SELECT f.id, f.model, f.embedding, ? FROM faces f \
         WHERE f.model <> ? AND EXISTS (SELECT 1 FROM face_embeddings e WHERE e.face_id = f.id AND e.model = ?) \
         ON CONFLICT (face_id, model) DO UPDATE SET embedding = excluded.embedding, created_at = excluded.created_at",
    )
    .bind(now())
    .bind(model)
    .bind(model)
    .execute(&mut *tx)
    .await?;
    let switched = sqlx::query(
        "UPDATE faces SET model = ?, embedding = (SELECT e.embedding FROM face_embeddings e \
         WHERE e.face_id = faces.id AND e.model = ?) \
         WHERE model <> ? AND EXISTS (SELECT 1 FROM face_embeddings e WHERE e.face_id = faces.id AND e.model = ?)",
    )
    .bind(model)
    .bind(model)
    .bind(model)
    .bind(model)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM face_embeddings WHERE model = ? AND face_id IN (SELECT id FROM faces WHERE model = ?)")
        .bind(model)
        .bind(model)
        .execute(&mut *tx)
        .await?;
    let lacking: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM faces WHERE model <> ?").bind(model).fetch_one(&mut *tx).await?;
    let lacking = lacking as u64;
    if lacking > 0 && !force {
        tx.rollback().await?;
        return Ok(Switched { switched: 0, lacking, done: false });
    }
    if switched > 0 {
        audit::record(&mut *tx, actor, "switch_model", model).await?;
    }
    tx.commit().await?;
    Ok(Switched { switched, lacking, done: true })
}

/// Deletes the embeddings kept beside the faces' own: of `model`, or all.
pub(super) async fn prune(pool: &SqlitePool, model: Option<&str>, actor: &str) -> StoreResult<u64> {
    let mut tx = pool.begin().await?;
    let deleted = match model {
        Some(m) => sqlx::query("DELETE FROM face_embeddings WHERE model = ?").bind(m).execute(&mut *tx).await?,
        None => sqlx::query("DELETE FROM face_embeddings").execute(&mut *tx).await?,
    }
    .rows_affected();
    if deleted > 0 {
        audit::record(&mut *tx, actor, "prune_embeddings", model.unwrap_or("*")).await?;
    }
    tx.commit().await?;
    Ok(deleted)
}

/// Faces by model: own and beside.
pub(super) async fn counts(pool: &SqlitePool) -> StoreResult<Vec<ModelCount>> {
    let rows = sqlx::query(
        "SELECT model, SUM(own) AS own, SUM(beside) AS beside FROM ( \
           SELECT model, COUNT(*) AS own, 0 AS beside FROM faces WHERE person_id IS NOT NULL GROUP BY model \
           UNION ALL SELECT e.model, 0, COUNT(*) FROM face_embeddings e JOIN faces f ON f.id = e.face_id \
             WHERE f.person_id IS NOT NULL GROUP BY e.model) \
         GROUP BY model ORDER BY model",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let (own, beside): (i64, i64) = (r.try_get("own")?, r.try_get("beside")?);
            Ok(ModelCount { model: r.try_get("model")?, own: own as u64, beside: beside as u64 })
        })
        .collect()
}
