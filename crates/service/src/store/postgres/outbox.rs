//! The outbox of events, each webhook's place in it, and the log of
//! delivery attempts. An attempt's record and the webhook's new place are
//! written together: a place never moves past an event without a record of
//! how it ended.
use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;

use super::convert::{XMIN, at, text};
use crate::store::{ChangePos, Delivery, NewEvent, Outcome, StoreError, StoreResult, StoredEvent, WebhookPlace};

/// Writes one event (in the caller's transaction); its place in the outbox.
pub(super) async fn emit<'e, E: PgExecutor<'e>>(exec: E, e: &NewEvent) -> StoreResult<i64> {
    Ok(sqlx::query_scalar("INSERT INTO events (id, type, at, data) VALUES ($1, $2, $3, $4) RETURNING seq")
        .bind(&e.id)
        .bind(&e.kind)
        .bind(at(&e.at)?)
        .bind(&e.data)
        .fetch_one(exec)
        .await?)
}

/// Writes events in order (in the caller's transaction), in one statement.
pub(super) async fn emit_all(tx: &mut sqlx::PgConnection, events: &[NewEvent]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    let ats: Vec<OffsetDateTime> = events.iter().map(|e| at(&e.at)).collect::<StoreResult<_>>()?;
    let data: Vec<serde_json::Value> = events.iter().map(|e| e.data.clone()).collect();
    sqlx::query(
        "INSERT INTO events (id, type, at, data) SELECT i, k, a, d \
         FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::jsonb[]) WITH ORDINALITY AS t(i, k, a, d, n) \
         ORDER BY n",
    )
    .bind(ids)
    .bind(kinds)
    .bind(ats)
    .bind(data)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Writes events in one transaction; those already written (a retried
/// batch: same ids) are left as they are. The places of the new ones.
pub(super) async fn append(pool: &PgPool, events: &[NewEvent]) -> StoreResult<Vec<i64>> {
    let mut tx = pool.begin().await?;
    let mut seqs = Vec::with_capacity(events.len());
    for e in events {
        let seq: Option<i64> = sqlx::query_scalar(
            "INSERT INTO events (id, type, at, data) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING RETURNING seq",
        )
        .bind(&e.id)
        .bind(&e.kind)
        .bind(at(&e.at)?)
        .bind(&e.data)
        .fetch_optional(&mut *tx)
        .await?;
        seqs.extend(seq);
    }
    tx.commit().await?;
    Ok(seqs)
}

#[derive(sqlx::FromRow)]
struct EventRow {
    txid: i64,
    seq: i64,
    id: String,
    #[sqlx(rename = "type")]
    kind: String,
    at: OffsetDateTime,
    data: serde_json::Value,
}

/// Events after `after` of transactions older than any still running (see
/// the migration), in (txid, seq) order.
pub(super) async fn after(pool: &PgPool, after: ChangePos, limit: u32) -> StoreResult<Vec<StoredEvent>> {
    let rows = sqlx::query_as::<_, EventRow>(&format!(
        "SELECT txid, seq, id, type, at, data FROM events \
         WHERE (txid, seq) > ($1, $2) AND txid < {XMIN} ORDER BY txid, seq LIMIT $3"
    ))
    .bind(after.txid)
    .bind(after.seq)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(StoredEvent::from).collect())
}

impl From<EventRow> for StoredEvent {
    fn from(r: EventRow) -> StoredEvent {
        StoredEvent {
            pos: ChangePos { txid: r.txid, seq: r.seq },
            id: r.id,
            kind: r.kind,
            at: text(r.at),
            data: r.data,
        }
    }
}

pub(super) async fn place(pool: &PgPool, webhook_id: &str) -> StoreResult<Option<WebhookPlace>> {
    let row: Option<(i64, i64, i32, Option<OffsetDateTime>)> =
        sqlx::query_as("SELECT after_txid, after_seq, failures, next_at FROM webhooks WHERE id = $1")
            .bind(webhook_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(txid, seq, failures, next_at)| WebhookPlace {
        after: ChangePos { txid, seq },
        failures: u32::try_from(failures).unwrap_or(0),
        next_at: next_at.map(text),
    }))
}

/// Moves the place to `to` (never backwards), with no attempt pending.
const MOVE_ON: &str = "UPDATE webhooks SET after_txid = $1, after_seq = $2, failures = 0, next_at = NULL \
     WHERE id = $3 AND (after_txid, after_seq) < ($1, $2)";

pub(super) async fn skip(pool: &PgPool, webhook_id: &str, to: ChangePos) -> StoreResult<()> {
    sqlx::query(MOVE_ON).bind(to.txid).bind(to.seq).bind(webhook_id).execute(pool).await?;
    Ok(())
}

pub(super) async fn record(pool: &PgPool, d: &Delivery, event: ChangePos, next_at: Option<&str>) -> StoreResult<bool> {
    let mut tx = pool.begin().await?;
    let next = next_at.map(at).transpose()?;
    let moved = match d.outcome {
        Outcome::Delivered | Outcome::Failed => {
            sqlx::query(MOVE_ON).bind(event.txid).bind(event.seq).bind(&d.webhook_id)
        }
        Outcome::Retrying => sqlx::query(
            "UPDATE webhooks SET failures = $4, next_at = $5 WHERE id = $3 AND (after_txid, after_seq) < ($1, $2)",
        )
        .bind(event.txid)
        .bind(event.seq)
        .bind(&d.webhook_id)
        .bind(i32::try_from(d.attempt).unwrap_or(i32::MAX))
        .bind(next),
    }
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

async fn insert_delivery<'e, E: PgExecutor<'e>>(exec: E, d: &Delivery) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO deliveries (id, webhook_id, event_seq, attempt, at, status, error, outcome, millis) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&d.id)
    .bind(&d.webhook_id)
    .bind(d.event_seq)
    .bind(i32::try_from(d.attempt).unwrap_or(i32::MAX))
    .bind(at(&d.at)?)
    .bind(d.status.map(i32::from))
    .bind(d.error.as_deref())
    .bind(d.outcome.as_str())
    .bind(i64::try_from(d.millis).unwrap_or(i64::MAX))
    .execute(exec)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    seq: i64,
    id: String,
    webhook_id: String,
    event_seq: i64,
    attempt: i32,
    at: OffsetDateTime,
    status: Option<i32>,
    error: Option<String>,
    outcome: String,
    millis: i64,
}

pub(super) async fn deliveries(
    pool: &PgPool,
    webhook_id: &str,
    limit: u32,
    before: Option<i64>,
) -> StoreResult<Vec<(i64, Delivery)>> {
    let rows = sqlx::query_as::<_, DeliveryRow>(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries \
             WHERE webhook_id = $1 AND seq < COALESCE($2, 9223372036854775807) ORDER BY seq DESC LIMIT $3"
    ))
    .bind(webhook_id)
    .bind(before)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(|r| Ok((r.seq, Delivery::try_from(r)?))).collect()
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;

    fn try_from(r: DeliveryRow) -> StoreResult<Delivery> {
        let outcome =
            Outcome::parse(&r.outcome).ok_or_else(|| StoreError::Corrupt(format!("outcome {}", r.outcome)))?;
        Ok(Delivery {
            id: r.id,
            webhook_id: r.webhook_id,
            event_seq: r.event_seq,
            attempt: u32::try_from(r.attempt).unwrap_or(0),
            at: text(r.at),
            status: r.status.and_then(|s| u16::try_from(s).ok()),
            error: r.error,
            outcome,
            millis: u64::try_from(r.millis).unwrap_or(0),
        })
    }
}

const DELIVERY_COLUMNS: &str = "seq, id, webhook_id, event_seq, attempt, at, status, error, outcome, millis";

pub(super) async fn get_delivery(pool: &PgPool, webhook_id: &str, id: &str) -> StoreResult<Option<Delivery>> {
    let row = sqlx::query_as::<_, DeliveryRow>(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE webhook_id = $1 AND id = $2"
    ))
    .bind(webhook_id)
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(Delivery::try_from).transpose()
}

/// Logs an attempt made out of turn (a retry asked for): the place stays.
pub(super) async fn log_delivery(pool: &PgPool, d: &Delivery) -> StoreResult<()> {
    insert_delivery(pool, d).await
}

pub(super) async fn event(pool: &PgPool, seq: i64) -> StoreResult<Option<StoredEvent>> {
    let row = sqlx::query_as::<_, EventRow>("SELECT txid, seq, id, type, at, data FROM events WHERE seq = $1")
        .bind(seq)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(StoredEvent::from))
}

/// Takes (or keeps) the right to deliver to a webhook until `until`;
/// false while another process holds it.
pub(super) async fn lease(pool: &PgPool, webhook_id: &str, owner: &str, now: &str, until: &str) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE webhooks SET lease_owner = $1, lease_until = $2 \
         WHERE id = $3 AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < $4)",
    )
    .bind(owner)
    .bind(at(until)?)
    .bind(webhook_id)
    .bind(at(now)?)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Each webhook's events still to deliver (after its place, of types it wants).
pub(super) async fn pending(pool: &PgPool) -> StoreResult<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT w.id, (SELECT COUNT(*) FROM events e WHERE (e.txid, e.seq) > (w.after_txid, w.after_seq) \
         AND (jsonb_exists(w.events, '*') OR jsonb_exists(w.events, e.type))) FROM webhooks w ORDER BY w.id",
    )
    .fetch_all(pool)
    .await?)
}

/// Deletes the events written before `before` that every webhook has
/// passed (with their attempts); how many.
pub(super) async fn prune(pool: &PgPool, before: &str) -> StoreResult<u64> {
    let done = sqlx::query(
        "DELETE FROM events e WHERE e.at < $1 AND NOT EXISTS \
         (SELECT 1 FROM webhooks w WHERE (w.after_txid, w.after_seq) < (e.txid, e.seq))",
    )
    .bind(at(before)?)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
