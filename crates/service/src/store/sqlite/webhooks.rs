//! Webhook rows: where events go. A new webhook starts after the newest
//! event (it receives what happens from then on); its secret is read only
//! to sign.
use sqlx::{Row, SqlitePool};

use super::audit;
use crate::store::{StoreError, StoreResult, Webhook, WebhookChange};

const COLUMNS: &str = "id, url, events, paused, created_at";

fn webhook(row: &sqlx::sqlite::SqliteRow) -> StoreResult<Webhook> {
    let events: String = row.try_get("events")?;
    Ok(Webhook {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        events: serde_json::from_str(&events).map_err(|e| StoreError::Corrupt(format!("webhook events: {e}")))?,
        paused: row.try_get::<i64, _>("paused")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

fn events_json(events: &[String]) -> String {
    serde_json::Value::from(events.to_vec()).to_string()
}

pub(super) async fn insert(pool: &SqlitePool, w: &Webhook, secret: &str, actor: &str) -> StoreResult<()> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(
        "INSERT INTO webhooks (id, url, events, secret, paused, created_at, after_seq) \
         VALUES (?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) FROM events))",
    )
    .bind(&w.id)
    .bind(&w.url)
    .bind(events_json(&w.events))
    .bind(secret)
    .bind(i64::from(w.paused))
    .bind(&w.created_at)
    .execute(&mut *tx)
    .await?;
    audit::record(&mut *tx, actor, "create_webhook", &w.id).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn list(pool: &SqlitePool) -> StoreResult<Vec<Webhook>> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM webhooks ORDER BY id")).fetch_all(pool).await?;
    rows.iter().map(webhook).collect()
}

pub(super) async fn get(pool: &SqlitePool, id: &str) -> StoreResult<Option<Webhook>> {
    let row =
        sqlx::query(&format!("SELECT {COLUMNS} FROM webhooks WHERE id = ?")).bind(id).fetch_optional(pool).await?;
    row.as_ref().map(webhook).transpose()
}

pub(super) async fn update(
    pool: &SqlitePool,
    id: &str,
    change: &WebhookChange,
    actor: &str,
) -> StoreResult<Option<Webhook>> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let row = sqlx::query(&format!(
        "UPDATE webhooks SET url = COALESCE(?, url), events = COALESCE(?, events), paused = COALESCE(?, paused) \
         WHERE id = ? RETURNING {COLUMNS}"
    ))
    .bind(change.url.as_deref())
    .bind(change.events.as_deref().map(events_json))
    .bind(change.paused.map(i64::from))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let updated = webhook(&row)?;
    audit::record(&mut *tx, actor, "update_webhook", id).await?;
    tx.commit().await?;
    Ok(Some(updated))
}

pub(super) async fn delete(pool: &SqlitePool, id: &str, actor: &str) -> StoreResult<bool> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query("DELETE FROM webhooks WHERE id = ?").bind(id).execute(&mut *tx).await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    audit::record(&mut *tx, actor, "delete_webhook", id).await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn secret(pool: &SqlitePool, id: &str) -> StoreResult<Option<String>> {
    Ok(sqlx::query_scalar("SELECT secret FROM webhooks WHERE id = ?").bind(id).fetch_optional(pool).await?)
}
