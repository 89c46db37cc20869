//! The outbox of events, each webhook's place in it, and the log of
//! delivery attempts. An attempt's record and the webhook's new place are
//! written together: a place never moves past an event without a record of
//! how it ended.
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteExecutor, SqlitePool};

use crate::store::{ChangePos, Delivery, NewEvent, Outcome, StoreError, StoreResult, StoredEvent, WebhookPlace};

/// Writes one event (in the caller's transaction); its place in the outbox.
pub(super) async fn emit<'e, E: SqliteExecutor<'e>>(exec: E, e: &NewEvent) -> StoreResult<i64> {
    Ok(sqlx::query_scalar("INSERT INTO events (id, type, at, data) VALUES (?, ?, ?, ?) RETURNING seq")
        .bind(&e.id)
        .bind(&e.kind)
        .bind(&e.at)
        .bind(e.data.to_string())
        .fetch_one(exec)
        .await?)
}

/// Writes events in order (in the caller's transaction).
pub(super) async fn emit_all(tx: &mut sqlx::SqliteConnection, events: &[NewEvent]) -> StoreResult<()> {
    for e in events {
        emit(&mut *tx, e).await?;
    }
    Ok(())
}

/// Writes events in one transaction; those already written (a retried
/// batch: same ids) are left as they are. The places of the new ones.
pub(super) async fn append(pool: &SqlitePool, events: &[NewEvent]) -> StoreResult<Vec<i64>> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut seqs = Vec::with_capacity(events.len());
    for e in events {
        let seq: Option<i64> = sqlx::query_scalar(
            "INSERT INTO events (id, type, at, data) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING seq",
        )
        .bind(&e.id)
        .bind(&e.kind)
        .bind(&e.at)
        .bind(e.data.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        seqs.extend(seq);
    }
    tx.commit().await?;
    Ok(seqs)
}

/// Events after `after`, in `seq` order (SQLite commits one writer at a
/// time, in that order: `txid` is always 0).
pub(super) async fn after(pool: &SqlitePool, after: ChangePos, limit: u32) -> StoreResult<Vec<StoredEvent>> {
    let rows = sqlx::query("SELECT seq, id, type, at, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?")
        .bind(after.seq)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(stored_event).collect()
}

fn stored_event(r: &SqliteRow) -> StoreResult<StoredEvent> {
    let data: String = r.try_get("data")?;
    Ok(StoredEvent {
        pos: ChangePos { txid: 0, seq: r.try_get("seq")? },
        id: r.try_get("id")?,
        kind: r.try_get("type")?,
        at: r.try_get("at")?,
        data: serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(format!("event data: {e}")))?,
    })
}

pub(super) async fn place(pool: &SqlitePool, webhook_id: &str) -> StoreResult<Option<WebhookPlace>> {
    let row = sqlx::query("SELECT after_seq, failures, next_at FROM webhooks WHERE id = ?")
        .bind(webhook_id)
        .fetch_optional(pool)
        .await?;
    row.map(|r| {
        Ok(WebhookPlace {
            after: ChangePos { txid: 0, seq: r.try_get("after_seq")? },
            failures: u32::try_from(r.try_get::<i64, _>("failures")?).unwrap_or(0),
            next_at: r.try_get("next_at")?,
        })
    })
    .transpose()
}

pub(super) async fn skip(pool: &SqlitePool, webhook_id: &str, to: ChangePos) -> StoreResult<()> {
    sqlx::query("UPDATE webhooks SET after_seq = ?, failures = 0, next_at = NULL WHERE id = ? AND after_seq < ?")
        .bind(to.seq)
        .bind(webhook_id)
        .bind(to.seq)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn record(
    pool: &SqlitePool,
    d: &Delivery,
    event: ChangePos,
    next_at: Option<&str>,
) -> StoreResult<bool> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let moved = match d.outcome {
        Outcome::Delivered | Outcome::Failed => sqlx::query(
            "UPDATE webhooks SET after_seq = ?, failures = 0, next_at = NULL WHERE id = ? AND after_seq < ?",
        )
        .bind(d.event_seq),
        Outcome::Retrying => {
            sqlx::query("UPDATE webhooks SET failures = ?, next_at = ? WHERE id = ? AND after_seq < ?")
                .bind(i64::from(d.attempt))
                .bind(next_at)
        }
    }
    .bind(&d.webhook_id)
    .bind(event.seq)
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() == 0 {
        // Deleted, or another process already dealt with the event.
        return Ok(false);
    }
    insert_delivery(&mut *tx, d).await?;
    tx.commit().await?;
    Ok(true)
}

async fn insert_delivery<'e, E: sqlx::SqliteExecutor<'e>>(exec: E, d: &Delivery) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO deliveries (id, webhook_id, event_seq, attempt, at, status, error, outcome, millis) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&d.id)
    .bind(&d.webhook_id)
    .bind(d.event_seq)
    .bind(i64::from(d.attempt))
    .bind(&d.at)
    .bind(d.status.map(i64::from))
    .bind(d.error.as_deref())
    .bind(d.outcome.as_str())
    .bind(i64::try_from(d.millis).unwrap_or(i64::MAX))
    .execute(exec)
    .await?;
    Ok(())
}

pub(super) async fn deliveries(
    pool: &SqlitePool,
    webhook_id: &str,
    limit: u32,
    before: Option<i64>,
) -> StoreResult<Vec<(i64, Delivery)>> {
    let rows = sqlx::query(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries \
             WHERE webhook_id = ? AND seq < COALESCE(?, 9223372036854775807) ORDER BY seq DESC LIMIT ?"
    ))
    .bind(webhook_id)
    .bind(before)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("seq")?, delivery(r)?))).collect()
}

fn delivery(r: &SqliteRow) -> StoreResult<Delivery> {
    let outcome: String = r.try_get("outcome")?;
    Ok(Delivery {
        id: r.try_get("id")?,
        webhook_id: r.try_get("webhook_id")?,
        event_seq: r.try_get("event_seq")?,
        attempt: u32::try_from(r.try_get::<i64, _>("attempt")?).unwrap_or(0),
        at: r.try_get("at")?,
        status: r.try_get::<Option<i64>, _>("status")?.and_then(|s| u16::try_from(s).ok()),
        error: r.try_get("error")?,
        outcome: Outcome::parse(&outcome).ok_or_else(|| StoreError::Corrupt(format!("outcome {outcome}")))?,
        millis: u64::try_from(r.try_get::<i64, _>("millis")?).unwrap_or(0),
    })
}

const DELIVERY_COLUMNS: &str = "seq, id, webhook_id, event_seq, attempt, at, status, error, outcome, millis";

pub(super) async fn get_delivery(pool: &SqlitePool, webhook_id: &str, id: &str) -> StoreResult<Option<Delivery>> {
    let row = sqlx::query(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE webhook_id = ? AND id = ?"))
        .bind(webhook_id)
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(delivery).transpose()
}

/// Logs an attempt made out of turn (a retry asked for): the place stays.
pub(super) async fn log_delivery(pool: &SqlitePool, d: &Delivery) -> StoreResult<()> {
    insert_delivery(pool, d).await
}

pub(super) async fn event(pool: &SqlitePool, seq: i64) -> StoreResult<Option<StoredEvent>> {
    let row =
        sqlx::query("SELECT seq, id, type, at, data FROM events WHERE seq = ?").bind(seq).fetch_optional(pool).await?;
    row.as_ref().map(stored_event).transpose()
}

/// Takes (or keeps) the right to deliver to a webhook until `until`;
/// false while another process holds it.
pub(super) async fn lease(
    pool: &SqlitePool,
    webhook_id: &str,
    owner: &str,
    now: &str,
    until: &str,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE webhooks SET lease_owner = ?, lease_until = ? \
         WHERE id = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)",
    )
    .bind(owner)
    .bind(until)
    .bind(webhook_id)
    .bind(owner)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Each webhook's events still to deliver (after its place, of types it wants).
pub(super) async fn pending(pool: &SqlitePool) -> StoreResult<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT w.id, (SELECT COUNT(*) FROM events e WHERE e.seq > w.after_seq AND EXISTS \
         (SELECT 1 FROM json_each(w.events) j WHERE j.value IN ('*', e.type))) FROM webhooks w ORDER BY w.id",
    )
    .fetch_all(pool)
    .await?)
}

/// Deletes the events written before `before` that every webhook has
/// passed (with their attempts); how many.
pub(super) async fn prune(pool: &SqlitePool, before: &str) -> StoreResult<u64> {
    let done = sqlx::query(
        "DELETE FROM events WHERE at < ? AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.after_seq < events.seq)",
    )
    .bind(before)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
