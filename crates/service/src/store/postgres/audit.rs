//! The append-only audit log (triggers in the migration refuse updates,
//! deletions and truncation). Every change writes its record in its own
//! transaction; the insert also wakes the replicas (`NOTIFY`).
use sqlx::PgPool;

use super::convert::{at, text};
use crate::store::{AuditEntry, StoreResult, now};

pub(super) async fn record<'e, E: sqlx::PgExecutor<'e>>(
    exec: E,
    actor: &str,
    action: &str,
    subject: &str,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO audit (at, actor, action, subject) VALUES ($1, $2, $3, $4)")
        .bind(at(&now())?)
        .bind(actor)
        .bind(action)
        .bind(subject)
        .execute(exec)
        .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    seq: i64,
    at: time::OffsetDateTime,
    actor: String,
    action: String,
    subject: String,
}

pub(super) async fn log(pool: &PgPool, limit: u32, before: Option<i64>) -> StoreResult<Vec<AuditEntry>> {
    let rows = sqlx::query_as::<_, AuditRow>(
        "SELECT seq, at, actor, action, subject FROM audit WHERE seq < COALESCE($1, 9223372036854775807) \
         ORDER BY seq DESC LIMIT $2",
    )
    .bind(before)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry { seq: r.seq, at: text(r.at), actor: r.actor, action: r.action, subject: r.subject })
        .collect())
}
