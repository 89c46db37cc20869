//! API key rows: the key's public part and the SHA-256 of its secret.
use sqlx::{FromRow as _, Row, SqlitePool};

use super::audit;
use crate::store::{ApiKey, StoreError, StoreResult, now};

/// A key's columns as stored.
#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    name: String,
    scope: String,
    created_at: String,
    revoked_at: Option<String>,
}

fn key(row: &sqlx::sqlite::SqliteRow) -> StoreResult<ApiKey> {
    let r = KeyRow::from_row(row)?;
    Ok(ApiKey {
        scope: r.scope.parse().map_err(|e: crate::domain::scope::UnknownScope| StoreError::Corrupt(e.to_string()))?,
        id: r.id,
        name: r.name,
        created_at: r.created_at,
        revoked_at: r.revoked_at,
    })
}

pub(super) async fn insert(pool: &SqlitePool, k: &ApiKey, secret_sha256: &[u8; 32], actor: &str) -> StoreResult<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO api_keys (id, name, scope, secret_sha256, created_at) VALUES (?, ?, ?, ?, ?)")
        .bind(&k.id)
        .bind(&k.name)
        .bind(k.scope.as_str())
        .bind(secret_sha256.as_slice())
        .bind(&k.created_at)
        .execute(&mut *tx)
        .await?;
    audit::record(&mut *tx, actor, "create_key", &k.id).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn list(pool: &SqlitePool) -> StoreResult<Vec<ApiKey>> {
    let rows = sqlx::query("SELECT id, name, scope, created_at, revoked_at FROM api_keys ORDER BY created_at, id")
        .fetch_all(pool)
        .await?;
    rows.iter().map(key).collect()
}

pub(super) async fn revoke(pool: &SqlitePool, id: &str, actor: &str) -> StoreResult<bool> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    audit::record(&mut *tx, actor, "revoke_key", id).await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn active(pool: &SqlitePool) -> StoreResult<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL").fetch_one(pool).await?)
}

pub(super) async fn valid(pool: &SqlitePool, id: &str) -> StoreResult<Option<(ApiKey, Vec<u8>)>> {
    let row = sqlx::query(
        "SELECT id, name, scope, created_at, revoked_at, secret_sha256 FROM api_keys \
         WHERE id = ? AND revoked_at IS NULL",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(|r| Ok((key(&r)?, r.try_get("secret_sha256")?))).transpose()
}

pub(super) async fn all_valid(pool: &SqlitePool) -> StoreResult<Vec<(ApiKey, Vec<u8>)>> {
    let rows = sqlx::query(
        "SELECT id, name, scope, created_at, revoked_at, secret_sha256 FROM api_keys WHERE revoked_at IS NULL",
    )
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| Ok((key(r)?, r.try_get("secret_sha256")?))).collect()
}
