//! The append-only audit log: every change to persons, faces and keys is
//! recorded with who made it, in the transaction that makes it.
use serde::Serialize;

use super::{Store, StoreResult, now};

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
}

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

impl Store {
    /// The latest `limit` entries, newest first, before sequence number `before` when given.
    pub async fn audit_log(&self, limit: u32, before: Option<i64>) -> StoreResult<Vec<AuditEntry>> {
        Ok(sqlx::query_as::<_, AuditEntry>(
            "SELECT seq, at, actor, action, subject FROM audit WHERE seq < COALESCE(?, 9223372036854775807) \
             ORDER BY seq DESC LIMIT ?",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}
