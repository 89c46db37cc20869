//! API keys: `vsk_<id>_<secret>`. The id (16 hex digits) is public and names
//! the key in lists and logs; the secret (32 random bytes, base64url) is
//! stored only as its SHA-256 and compared in constant time.
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{FromRow as _, Row};
use subtle::ConstantTimeEq;

use super::{Store, StoreError, StoreResult, now};
use crate::domain::Scope;

/// A key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// A newly created key: the only time the full key exists outside the client.
pub struct NewKey {
    pub key: ApiKey,
    pub secret: SecretString,
}

const PREFIX: &str = "vsk_";

fn random_bytes<const N: usize>() -> StoreResult<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| StoreError::Corrupt(format!("no system randomness: {e}")))?;
    Ok(b)
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Splits a presented key into its id and secret; None when malformed.
fn split(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == 16 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (id_ok && !secret.is_empty() && secret.len() <= 128).then_some((id, secret))
}

/// A key's columns as stored.
#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    name: String,
    scope: String,
    created_at: String,
    revoked_at: Option<String>,
}

fn key_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<ApiKey> {
    let r = KeyRow::from_row(row)?;
    Ok(ApiKey {
        scope: r.scope.parse().map_err(|e: crate::domain::scope::UnknownScope| StoreError::Corrupt(e.to_string()))?,
        id: r.id,
        name: r.name,
        created_at: r.created_at,
        revoked_at: r.revoked_at,
    })
}

impl Store {
    pub async fn create_key(&self, name: &str, scope: Scope, actor: &str) -> StoreResult<NewKey> {
        let id = hex::encode(random_bytes::<8>()?);
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
        let at = now();
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO api_keys (id, name, scope, secret_sha256, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&id)
            .bind(name)
            .bind(scope.as_str())
            .bind(digest(&secret).as_slice())
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        super::audit::record(&mut *tx, actor, "create_key", &id).await?;
        tx.commit().await?;
        let full = SecretString::from(format!("{PREFIX}{id}_{secret}"));
        Ok(NewKey { key: ApiKey { id, name: name.to_string(), scope, created_at: at, revoked_at: None }, secret: full })
    }

    pub async fn list_keys(&self) -> StoreResult<Vec<ApiKey>> {
        let rows = sqlx::query("SELECT id, name, scope, created_at, revoked_at FROM api_keys ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(key_row).collect()
    }

    /// Revokes a key; false when there is no such valid key.
    pub async fn revoke_key(&self, id: &str, actor: &str) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        super::audit::record(&mut *tx, actor, "revoke_key", id).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// How many keys are valid (not revoked).
    pub async fn active_keys(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL").fetch_one(&self.pool).await?)
    }

    /// The valid key a client presented, or None (malformed, unknown,
    /// revoked, or wrong secret: the caller cannot tell which).
    pub async fn authenticate(&self, presented: &SecretString) -> StoreResult<Option<ApiKey>> {
        let Some((id, secret)) = split(presented.expose_secret()) else { return Ok(None) };
        let row = sqlx::query(
            "SELECT id, name, scope, created_at, revoked_at, secret_sha256 FROM api_keys \
             WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        // Hash the secret whether or not the id exists, so timing does not
        // tell a known id from an unknown one.
        let presented = digest(secret);
        let Some(row) = row else { return Ok(None) };
        let stored: Vec<u8> = row.try_get("secret_sha256")?;
        if bool::from(stored.as_slice().ct_eq(presented.as_slice())) { key_row(&row).map(Some) } else { Ok(None) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest() {
        assert!(Scope::Admin.allows(Scope::Enroll) && Scope::Admin.allows(Scope::Match));
        assert!(Scope::Enroll.allows(Scope::Match) && Scope::Enroll.allows(Scope::Enroll));
        assert!(!Scope::Enroll.allows(Scope::Admin) && !Scope::Match.allows(Scope::Enroll));
    }

    #[test]
    fn presented_keys_are_split_strictly() {
        assert_eq!(split("vsk_0123456789abcdef_s3cr3t"), Some(("0123456789abcdef", "s3cr3t")));
        for bad in [
            "",
            "vsk_",
            "vsk_0123456789abcdef",
            "vsk_0123456789abcdef_",
            "xyz_0123456789abcdef_s",
            "vsk_0123456789ABCDEF_s",
            "vsk_../../etc/passw_s",
            "vsk_0123_s",
        ] {
            assert_eq!(split(bad), None, "{bad}");
        }
    }
}
