//! The data keys listed for this database (`data_keys`), and the sealed
//! columns read and rewritten value by value by `visage data-key rotate`.
//! A reseal is a compare-and-set on the value read: a row changed or moved
//! meanwhile is left for the next pass. Reseals write no audit record (so
//! no replica reloads): the values they hold do not change.
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::audit;
use super::convert::{at, id, new_uuid, text};
use crate::store::{DataKeyRecord, SealedColumn, StoreResult, StoredValue, now};

pub(super) async fn list(pool: &PgPool) -> StoreResult<Vec<DataKeyRecord>> {
    let rows: Vec<(String, Vec<u8>, OffsetDateTime)> =
        sqlx::query_as("SELECT id, check_value, added_at FROM data_keys ORDER BY added_at, id").fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(id, check_value, added)| DataKeyRecord { id, check_value, added_at: text(added) })
        .collect())
}

/// Lists a key (nothing when it is listed already).
pub(super) async fn add(pool: &PgPool, id: &str, check_value: &[u8], actor: &str) -> StoreResult<()> {
    let mut tx = pool.begin().await?;
    let added =
        sqlx::query("INSERT INTO data_keys (id, check_value, added_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(check_value)
            .bind(at(&now())?)
            .execute(&mut *tx)
            .await?;
    if added.rows_affected() > 0 {
        audit::record(&mut *tx, actor, "add_data_key", id).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Unlists every key but `keep`; how many.
pub(super) async fn retire_others(pool: &PgPool, keep: &str, actor: &str) -> StoreResult<u64> {
    let mut tx = pool.begin().await?;
    let gone = sqlx::query("DELETE FROM data_keys WHERE id <> $1").bind(keep).execute(&mut *tx).await?.rows_affected();
    if gone > 0 {
        audit::record(&mut *tx, actor, "retire_data_keys", keep).await?;
    }
    tx.commit().await?;
    Ok(gone)
}

/// The statements of a column: the read (values not starting with the
/// prefix `$1`, after the cursor `$2, $3`, in order, at most `$4`) and the
/// compare-and-set (`$1` new, `$2` face, `$3` model, `$4` as read).
fn statements(column: SealedColumn) -> (&'static str, &'static str) {
    match column {
        SealedColumn::FaceEmbedding => (
            "SELECT id AS face_id, model, embedding AS stored FROM faces \
             WHERE substring(embedding from 1 for 11) IS DISTINCT FROM $1 AND (id, model) > ($2, $3) \
             ORDER BY id, model LIMIT $4",
            "UPDATE faces SET embedding = $1 WHERE id = $2 AND model = $3 AND embedding = $4",
        ),
        SealedColumn::BesideEmbedding => (
            "SELECT face_id, model, embedding AS stored FROM face_embeddings \
             WHERE substring(embedding from 1 for 11) IS DISTINCT FROM $1 AND (face_id, model) > ($2, $3) \
             ORDER BY face_id, model LIMIT $4",
            "UPDATE face_embeddings SET embedding = $1 WHERE face_id = $2 AND model = $3 AND embedding = $4",
        ),
        SealedColumn::Crop => (
            "SELECT face_id, '' AS model, image AS stored FROM face_crops \
             WHERE substring(image from 1 for 11) IS DISTINCT FROM $1 AND (face_id, ''::text) > ($2, $3) \
             ORDER BY face_id LIMIT $4",
            "UPDATE face_crops SET image = $1 WHERE face_id = $2 AND $3 = '' AND image = $4",
        ),
    }
}

pub(super) async fn values_not_sealed_by(
    pool: &PgPool,
    column: SealedColumn,
    prefix: &[u8],
    after: Option<(&str, &str)>,
    limit: u32,
) -> StoreResult<Vec<StoredValue>> {
    let (face, model) = match after {
        Some((f, m)) => (new_uuid(f)?, m),
        None => (Uuid::nil(), ""),
    };
    let rows: Vec<(Uuid, String, Vec<u8>)> = sqlx::query_as(statements(column).0)
        .bind(prefix)
        .bind(face)
        .bind(model)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|(f, model, stored)| StoredValue { column, face_id: id(f), model, stored }).collect())
}

/// Rewrites values as read, in one transaction; how many were still as read.
pub(super) async fn replace_values(pool: &PgPool, values: &[(StoredValue, Vec<u8>)]) -> StoreResult<u64> {
    let mut tx = pool.begin().await?;
    let mut done = 0;
    for (value, new) in values {
        done += sqlx::query(statements(value.column).1)
            .bind(new)
            .bind(new_uuid(&value.face_id)?)
            .bind(&value.model)
            .bind(&value.stored)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    tx.commit().await?;
    Ok(done)
}
