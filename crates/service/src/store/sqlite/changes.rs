//! The change log: the audit log by sequence number. SQLite has one writer
//! at a time, so rows commit in `seq` order and none can appear behind a
//! position once read. One process owns the file: nothing notifies.
use std::collections::HashSet;

use sqlx::SqlitePool;

use super::faces::{EMBEDDING_OF_MODEL, stored_embedding};
use crate::sealing::DataKeys;
use crate::store::{Change, ChangePos, StoreResult, StoredEmbedding};

pub(super) async fn horizon(pool: &SqlitePool) -> StoreResult<ChangePos> {
    let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM audit").fetch_one(pool).await?;
    Ok(ChangePos { txid: 0, seq })
}

pub(super) async fn after(pool: &SqlitePool, after: ChangePos, limit: u32) -> StoreResult<Vec<Change>> {
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT seq, action, subject FROM audit WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(after.seq)
            .bind(limit)
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(seq, action, subject)| Change { pos: ChangePos { txid: 0, seq }, action, subject })
        .collect())
}

pub(super) async fn embeddings_of(
    pool: &SqlitePool,
    keys: &DataKeys,
    faces: &[&str],
    persons: &[&str],
    model: &str,
) -> StoreResult<Vec<StoredEmbedding>> {
    let (mut out, mut seen) = (Vec::new(), HashSet::new());
    for (column, ids) in [("id", faces), ("person_id", persons)] {
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!("{EMBEDDING_OF_MODEL} AND f.{column} IN ({marks})");
            let mut q = sqlx::query(&sql).bind(model);
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(pool).await? {
                let e = stored_embedding(keys, row)?;
                if seen.insert(e.face_id.clone()) {
                    out.push(e);
                }
            }
        }
    }
    Ok(out)
}
