//! Webhook rows: where events go. A new webhook starts after the newest
//! event (it receives what happens from then on); its secret is read only
//! to sign.
use sqlx::PgPool;
use time::OffsetDateTime;

use super::audit;
use super::convert::{XMIN, at, text};
use crate::store::{StoreError, StoreResult, Webhook, WebhookChange};

const COLUMNS: &str = "id, url, events, paused, created_at";

#[derive(sqlx::FromRow)]
struct WebhookRow {
    id: String,
    url: String,
    events: serde_json::Value,
    paused: bool,
    created_at: OffsetDateTime,
}

impl TryFrom<WebhookRow> for Webhook {
    type Error = StoreError;

    fn try_from(r: WebhookRow) -> StoreResult<Self> {
        Ok(Webhook {
            events: serde_json::from_value(r.events)
                .map_err(|e| StoreError::Corrupt(format!("webhook events: {e}")))?,
            id: r.id,
            url: r.url,
            paused: r.paused,
            created_at: text(r.created_at),
        })
    }
}

pub(super) async fn insert(pool: &PgPool, w: &Webhook, secret: &str, actor: &str) -> StoreResult<()> {
    let mut tx = pool.begin().await?;
    // From now on: the events of transactions still running, and later ones.
    sqlx::query(&format!(
        "INSERT INTO webhooks (id, url, events, secret, paused, created_at, after_txid, after_seq) \
         VALUES ($1, $2, $3, $4, $5, $6, {XMIN}, 0)"
    ))
    .bind(&w.id)
    .bind(&w.url)
    .bind(serde_json::Value::from(w.events.clone()))
    .bind(secret)
    .bind(w.paused)
    .bind(at(&w.created_at)?)
    .execute(&mut *tx)
    .await?;
    audit::record(&mut *tx, actor, "create_webhook", &w.id).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn list(pool: &PgPool) -> StoreResult<Vec<Webhook>> {
    let rows =
        sqlx::query_as::<_, WebhookRow>(&format!("SELECT {COLUMNS} FROM webhooks ORDER BY id")).fetch_all(pool).await?;
    rows.into_iter().map(Webhook::try_from).collect()
}

pub(super) async fn get(pool: &PgPool, id: &str) -> StoreResult<Option<Webhook>> {
    let row = sqlx::query_as::<_, WebhookRow>(&format!("SELECT {COLUMNS} FROM webhooks WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.map(Webhook::try_from).transpose()
}

pub(super) async fn update(
    pool: &PgPool,
    id: &str,
    change: &WebhookChange,
    actor: &str,
) -> StoreResult<Option<Webhook>> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query_as::<_, WebhookRow>(&format!(
        "UPDATE webhooks SET url = COALESCE($1, url), events = COALESCE($2, events), paused = COALESCE($3, paused) \
         WHERE id = $4 RETURNING {COLUMNS}"
    ))
    .bind(change.url.as_deref())
    .bind(change.events.clone().map(serde_json::Value::from))
    .bind(change.paused)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let updated = Webhook::try_from(row)?;
    audit::record(&mut *tx, actor, "update_webhook", id).await?;
    tx.commit().await?;
    Ok(Some(updated))
}

pub(super) async fn delete(pool: &PgPool, id: &str, actor: &str) -> StoreResult<bool> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query("DELETE FROM webhooks WHERE id = $1").bind(id).execute(&mut *tx).await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    audit::record(&mut *tx, actor, "delete_webhook", id).await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn secret(pool: &PgPool, id: &str) -> StoreResult<Option<String>> {
    Ok(sqlx::query_scalar("SELECT secret FROM webhooks WHERE id = $1").bind(id).fetch_optional(pool).await?)
}
