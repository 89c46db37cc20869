//! The data keys listed for this database (`data_keys`), and the sealed
//! columns read and rewritten value by value by `visage data-key rotate`.
//! A reseal is a compare-and-set on the value read: a row changed or moved
//! meanwhile is left for the next pass. Reseals write no audit record:
//! the values they hold do not change.
use sqlx::{Row, SqlitePool};

use super::audit;
use crate::store::{DataKeyRecord, SealedColumn, StoreResult, StoredValue, now};

pub(super) async fn list(pool: &SqlitePool) -> StoreResult<Vec<DataKeyRecord>> {
    let rows =
        sqlx::query("SELECT id, check_value, added_at FROM data_keys ORDER BY added_at, id").fetch_all(pool).await?;
    rows.iter()
        .map(|r| {
            Ok(DataKeyRecord {
                id: r.try_get("id")?,
                check_value: r.try_get("check_value")?,
                added_at: r.try_get("added_at")?,
            })
        })
        .collect()
}

/// Lists a key (nothing when it is listed already).
pub(super) async fn add(pool: &SqlitePool, id: &str, check_value: &[u8], actor: &str) -> StoreResult<()> {
    let mut tx = pool.begin().await?;
    let added =
        sqlx::query("INSERT INTO data_keys (id, check_value, added_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(check_value)
            .bind(now())
            .execute(&mut *tx)
            .await?;
    if added.rows_affected() > 0 {
        audit::record(&mut *tx, actor, "add_data_key", id).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Unlists every key but `keep`; how many.
pub(super) async fn retire_others(pool: &SqlitePool, keep: &str, actor: &str) -> StoreResult<u64> {
    let mut tx = pool.begin().await?;
    let gone = sqlx::query("DELETE FROM data_keys WHERE id <> ?").bind(keep).execute(&mut *tx).await?.rows_affected();
    if gone > 0 {
        audit::record(&mut *tx, actor, "retire_data_keys", keep).await?;
    }
    tx.commit().await?;
    Ok(gone)
}

/// The statements of a column: the read (values not starting with the
/// prefix bound first, after the cursor, in order) and the compare-and-set.
fn statements(column: SealedColumn) -> (&'static str, &'static str) {
    match column {
        SealedColumn::FaceEmbedding => (
            "SELECT id AS face_id, model, embedding AS stored FROM faces \
             WHERE substr(embedding, 1, 11) IS NOT ? AND (id, model) > (?, ?) ORDER BY id, model LIMIT ?",
            "UPDATE faces SET embedding = ? WHERE id = ? AND model = ? AND embedding = ?",
        ),
        SealedColumn::BesideEmbedding => (
            "SELECT face_id, model, embedding AS stored FROM face_embeddings \
             WHERE substr(embedding, 1, 11) IS NOT ? AND (face_id, model) > (?, ?) ORDER BY face_id, model LIMIT ?",
            "UPDATE face_embeddings SET embedding = ? WHERE face_id = ? AND model = ? AND embedding = ?",
        ),
        SealedColumn::Crop => (
            "SELECT face_id, '' AS model, image AS stored FROM face_crops \
             WHERE substr(image, 1, 11) IS NOT ? AND (face_id, '') > (?, ?) ORDER BY face_id LIMIT ?",
            "UPDATE face_crops SET image = ? WHERE face_id = ? AND ? = '' AND image = ?",
        ),
    }
}

pub(super) async fn values_not_sealed_by(
    pool: &SqlitePool,
    column: SealedColumn,
    prefix: &[u8],
    after: Option<(&str, &str)>,
    limit: u32,
) -> StoreResult<Vec<StoredValue>> {
    let (face, model) = after.unwrap_or(("", ""));
    let rows =
        sqlx::query(statements(column).0).bind(prefix).bind(face).bind(model).bind(limit).fetch_all(pool).await?;
    rows.iter()
        .map(|r| {
            Ok(StoredValue {
                column,
                face_id: r.try_get("face_id")?,
                model: r.try_get("model")?,
                stored: r.try_get("stored")?,
            })
        })
        .collect()
}

/// Rewrites values as read, in one transaction; how many were still as read.
pub(super) async fn replace_values(pool: &SqlitePool, values: &[(StoredValue, Vec<u8>)]) -> StoreResult<u64> {
    let mut tx = pool.begin().await?;
    let mut done = 0;
    for (value, new) in values {
        done += sqlx::query(statements(value.column).1)
            .bind(new)
            .bind(&value.face_id)
            .bind(&value.model)
            .bind(&value.stored)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    tx.commit().await?;
    Ok(done)
}
