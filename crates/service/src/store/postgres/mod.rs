//! The PostgreSQL implementation of the store, for several replicas on one
//! database. Migrations in `migrations/postgres/` are embedded and applied
//! when the store opens, under sqlx's advisory lock, so replicas starting
//! together apply them once. Native types: `uuid` ids, `timestamptz`,
//! `jsonb`, `bytea` embeddings. The audit log doubles as the change log the
//! replicas follow (`changes.rs`). One file per table, as for SQLite.
mod audit;
mod changes;
mod convert;
mod data_keys;
mod embedder_switch;
mod faces;
mod keys;
mod outbox;
mod persons;
mod transfer;
mod unassigned;
mod webhooks;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use futures_util::stream::BoxStream;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::sealing::DataKeys;

use super::{
    ApiKey, AuditEntry, Change, ChangePos, Database, Delivery, FaceExport, FaceRecord, NewEvent, NewFace, Person,
    Regroup, StoreError, StoreResult, StoredEmbedding, StoredEvent, Webhook, WebhookChange, WebhookPlace,
};

/// Longest wait for a free connection (then 503, not a hang).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per process.
const MAX_CONNECTIONS: u32 = 8;

pub struct Postgres {
    pool: PgPool,
    keys: DataKeys,
}

impl Postgres {
    /// Connects to the database the URL names and applies the migrations.
    pub async fn open(url: &SecretString, keys: DataKeys) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url.expose_secret())?.application_name("visage");
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../../migrations/postgres").run(&pool).await?;
        Ok(Self { pool, keys })
    }
}

super::database_impl::database_impl!(Postgres {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    /// Not done here: a PostgreSQL database is backed up by its own tools.
    async fn backup(&self, _dest: &Path) -> StoreResult<()> {
        Err(StoreError::Unsupported(
            "`visage backup` copies a SQLite store; back up a PostgreSQL store with its own tools: \
             `pg_dump --format=custom --file=visage.dump \"$VISAGE_DB\"` (restore with pg_restore), \
             or continuous archiving with point-in-time recovery"
                .into(),
        ))
    }

    /// Reads every row of every table (a damaged page or row fails the
    /// read) and checks what the constraints cannot: each embedding's
    /// length agrees with the model's other embeddings.
    async fn integrity_check(&self) -> StoreResult<String> {
        // Every column of every row, detoasted: a damaged page or value fails the read.
        let (persons, faces, keys, audit): (Option<i64>, Option<i64>, Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT sum(octet_length(t::text)) FROM persons t)::bigint, \
             (SELECT sum(octet_length(t::text)) FROM faces t)::bigint, \
             (SELECT sum(octet_length(t::text)) FROM api_keys t)::bigint, \
             (SELECT sum(octet_length(t::text)) FROM audit t)::bigint",
        )
        .fetch_one(&self.pool)
        .await?;
        // A sealed embedding is longer by the sealing's overhead.
        let mixed: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT model FROM (SELECT model, octet_length(embedding) - CASE WHEN octet_length(embedding) % 4 = 3 \
             THEN {} ELSE 0 END AS clear FROM faces) f GROUP BY model HAVING min(clear) <> max(clear)",
            crate::sealing::OVERHEAD
        ))
        .fetch_all(&self.pool)
        .await?;
        tracing::debug!(?persons, ?faces, ?keys, ?audit, "integrity check read every row (bytes as text)");
        Ok(if mixed.is_empty() {
            "ok".to_string()
        } else {
            format!("embeddings of different lengths under one model: {}", mixed.join(", "))
        })
    }

    async fn delete_person(&self, id: &str, actor: &str) -> StoreResult<bool> {
        persons::delete(&self.pool, id, actor).await
    }

    async fn delete_face(&self, person_id: &str, face_id: &str, actor: &str) -> StoreResult<bool> {
        faces::delete(&self.pool, person_id, face_id, actor).await
    }

    async fn delete_face_by_id(&self, face_id: &str, actor: &str) -> StoreResult<bool> {
        unassigned::delete(&self.pool, face_id, actor).await
    }

    async fn merge_persons(&self, into: &str, from: &[&str], actor: &str) -> StoreResult<Vec<String>> {
        unassigned::merge_persons(&self.pool, into, from, actor).await
    }

    async fn purge_unassigned(&self, before: &str, actor: &str) -> StoreResult<Vec<String>> {
        unassigned::purge(&self.pool, before, actor).await
    }

    async fn replace_values(&self, values: &[(super::StoredValue, Vec<u8>)]) -> StoreResult<u64> {
        data_keys::replace_values(&self.pool, values).await
    }

    async fn prune_embeddings(&self, model: Option<&str>, actor: &str) -> StoreResult<u64> {
        embedder_switch::prune(&self.pool, model, actor).await
    }

    fn shared(&self) -> bool {
        true
    }

    async fn change_signals(&self) -> StoreResult<Option<BoxStream<'static, StoreResult<()>>>> {
        Ok(Some(changes::signals(&self.pool).await?))
    }
});
