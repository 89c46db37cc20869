//! API key rows: the key's public part and the SHA-256 of its secret.
use sqlx::PgPool;
use time::OffsetDateTime;

use super::audit;
use super::convert::{at, text};
use crate::store::{ApiKey, StoreError, StoreResult, now};

/// A key's columns as stored.
#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    name: String,
    scope: String,
    created_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
}

impl TryFrom<KeyRow> for ApiKey {
    type Error = StoreError;

    fn try_from(r: KeyRow) -> StoreResult<Self> {
        Ok(ApiKey {
            scope: r
                .scope
                .parse()
                .map_err(|e: crate::domain::scope::UnknownScope| StoreError::Corrupt(e.to_string()))?,
            id: r.id,
            name: r.name,
            created_at: text(r.created_at),
            revoked_at: r.revoked_at.map(text),
        })
    }
}

pub(super) async fn insert(pool: &PgPool, k: &ApiKey, secret_sha256: &[u8; 32], actor: &str) -> StoreResult<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO api_keys (id, name, scope, secret_sha256, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&k.id)
        .bind(&k.name)
        .bind(k.scope.as_str())
        .bind(secret_sha256.as_slice())
        .bind(at(&k.created_at)?)
        .execute(&mut *tx)
        .await?;
    audit::record(&mut *tx, actor, "create_key", &k.id).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn list(pool: &PgPool) -> StoreResult<Vec<ApiKey>> {
    let rows = sqlx::query_as::<_, KeyRow>(
        "SELECT id, name, scope, created_at, revoked_at FROM api_keys ORDER BY created_at, id",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(ApiKey::try_from).collect()
}

pub(super) async fn revoke(pool: &PgPool, id: &str, actor: &str) -> StoreResult<bool> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(at(&now())?)
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

pub(super) async fn active(pool: &PgPool) -> StoreResult<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL").fetch_one(pool).await?)
}

#[derive(sqlx::FromRow)]
struct ValidKey {
    #[sqlx(flatten)]
    key: KeyRow,
    secret_sha256: Vec<u8>,
}

pub(super) async fn valid(pool: &PgPool, id: &str) -> StoreResult<Option<(ApiKey, Vec<u8>)>> {
    let row = sqlx::query_as::<_, ValidKey>(
        "SELECT id, name, scope, created_at, revoked_at, secret_sha256 FROM api_keys \
         WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(|r| Ok((ApiKey::try_from(r.key)?, r.secret_sha256))).transpose()
}

pub(super) async fn all_valid(pool: &PgPool) -> StoreResult<Vec<(ApiKey, Vec<u8>)>> {
    let rows = sqlx::query_as::<_, ValidKey>(
        "SELECT id, name, scope, created_at, revoked_at, secret_sha256 FROM api_keys WHERE revoked_at IS NULL",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(|r| Ok((ApiKey::try_from(r.key)?, r.secret_sha256))).collect()
}
