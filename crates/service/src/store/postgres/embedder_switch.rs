//! Embeddings kept beside a face's own while a gallery moves to another
//! embedder (`face_embeddings`): stored, counted, switched with the faces'
//! own in one transaction, and pruned. A face never has a beside embedding
//! of its own model.
use sqlx::PgPool;

use super::audit;
use super::convert::{at, uuid};
use crate::sealing::DataKeys;
use crate::store::{ModelCount, StoreResult, Switched, now, seal_embedding};

/// Keeps `embedding` as the face's embedding by `model` beside its own
/// (replacing an earlier one). False when the face is absent or its own
/// embedding is already of `model`.
pub(super) async fn put(
    pool: &PgPool,
    keys: &DataKeys,
    face_id: &str,
    model: &str,
    embedding: &[f32],
    actor: &str,
) -> StoreResult<bool> {
    let Some(id) = uuid(face_id) else { return Ok(false) };
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "INSERT INTO face_embeddings (face_id, model, embedding, created_at) \
         SELECT id, $1, $2, $3 FROM faces WHERE id = $4 AND model <> $1 \
         ON CONFLICT (face_id, model) DO UPDATE SET embedding = EXCLUDED.embedding, created_at = EXCLUDED.created_at",
    )
    .bind(model)
    .bind(seal_embedding(keys, &super::convert::id(id), model, embedding))
    .bind(at(&now())?)
    .bind(id)
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
/// transaction, with writes to faces held off meanwhile so the count of
/// faces left behind is exact. Refused (nothing changed) when faces lack
/// `model` and `force` is not given.
pub(super) async fn switch(pool: &PgPool, model: &str, force: bool, actor: &str) -> StoreResult<Switched> {
    let mut tx = pool.begin().await?;
    sqlx::query("LOCK TABLE faces IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO face_embeddings (face_id, model, embedding, created_at) \
         SELECT f.id, f.model, f.embedding, $2 FROM faces f JOIN face_embeddings e ON e.face_id = f.id AND e.model = $1 \
         WHERE f.model <> $1 \
         ON CONFLICT (face_id, model) DO UPDATE SET embedding = EXCLUDED.embedding, created_at = EXCLUDED.created_at",
    )
    .bind(model)
    .bind(at(&now())?)
    .execute(&mut *tx)
    .await?;
    let switched = sqlx::query(
        "UPDATE faces f SET model = e.model, embedding = e.embedding FROM face_embeddings e \
         WHERE e.face_id = f.id AND e.model = $1 AND f.model <> $1",
    )
    .bind(model)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM face_embeddings e USING faces f WHERE e.face_id = f.id AND e.model = $1 AND f.model = $1")
        .bind(model)
        .execute(&mut *tx)
        .await?;
    let lacking: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM faces WHERE model <> $1").bind(model).fetch_one(&mut *tx).await?;
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
pub(super) async fn prune(pool: &PgPool, model: Option<&str>, actor: &str) -> StoreResult<u64> {
    let mut tx = pool.begin().await?;
    let deleted = sqlx::query("DELETE FROM face_embeddings WHERE $1::text IS NULL OR model = $1")
        .bind(model)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted > 0 {
        audit::record(&mut *tx, actor, "prune_embeddings", model.unwrap_or("*")).await?;
    }
    tx.commit().await?;
    Ok(deleted)
}

/// Faces by model: own and beside.
pub(super) async fn counts(pool: &PgPool) -> StoreResult<Vec<ModelCount>> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT model, SUM(own)::bigint, SUM(beside)::bigint FROM ( \
           SELECT model, COUNT(*) AS own, 0::bigint AS beside FROM faces WHERE person_id IS NOT NULL GROUP BY model \
           UNION ALL SELECT e.model, 0::bigint, COUNT(*) FROM face_embeddings e JOIN faces f ON f.id = e.face_id \
             WHERE f.person_id IS NOT NULL GROUP BY e.model) AS c \
         GROUP BY model ORDER BY model",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(model, own, beside)| ModelCount { model, own: own as u64, beside: beside as u64 })
        .collect())
}
