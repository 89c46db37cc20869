//! The append-only audit log: every change to persons, faces and keys is
//! recorded with who made it, in the transaction that makes it (triggers in
//! the migration refuse updates and deletions).
use sqlx::SqlitePool;

use crate::store::{AuditEntry, StoreResult, now};

pub(super) async fn record<'e, E: sqlx::SqliteExecutor<'e>>(
    exec: E,
    actor: &str,
    action: &str,
    subject: &str,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO audit (at, actor, action, subject) VALUES (?, ?, ?, ?)")
        .bind(now())
        .bind(actor)
        .bind(action)
        .bind(subject)
        .execute(exec)
        .await?;
    Ok(())
}

pub(super) async fn log(pool: &SqlitePool, limit: u32, before: Option<i64>) -> StoreResult<Vec<AuditEntry>> {
    Ok(sqlx::query_as::<_, AuditEntry>(
        "SELECT seq, at, actor, action, subject FROM audit WHERE seq < COALESCE(?, 9223372036854775807) \
         ORDER BY seq DESC LIMIT ?",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
