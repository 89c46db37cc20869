//! The SQLite implementation of the store: one database file in WAL mode,
//! with foreign keys and `secure_delete` on. Migrations in
//! `migrations/sqlite/` are embedded and applied when the store opens. One
//! file per table: `persons`, `faces`, `keys`, `audit`, and `transfer` for
//! the admin commands' bulk operations.
mod audit;
mod changes;
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
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::sealing::DataKeys;

use super::{
    ApiKey, AuditEntry, Change, ChangePos, Database, Delivery, FaceExport, FaceRecord, NewEvent, NewFace, Person,
    Regroup, StoreError, StoreResult, StoredEmbedding, StoredEvent, Webhook, WebhookChange, WebhookPlace,
};

/// Longest wait for a free connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Sqlite {
    pool: SqlitePool,
    keys: DataKeys,
}

/// Applies the migrations on a connection of its own with foreign keys off
/// (a migration that rebuilds a table must not cascade to the rows that
/// refer to it: SQLite's procedure for schema changes), then checks every
/// foreign key.
async fn migrate(options: &SqliteConnectOptions) -> StoreResult<()> {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect_with(&options.clone().foreign_keys(false)).await?;
    sqlx::migrate!("../../migrations/sqlite").run(&mut conn).await?;
    let broken = sqlx::query("PRAGMA foreign_key_check").fetch_all(&mut conn).await?;
    conn.close().await?;
    match broken.len() {
        0 => Ok(()),
        n => Err(StoreError::Corrupt(format!("{n} rows refer to rows that do not exist after the migrations"))),
    }
}

impl Sqlite {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path, keys: DataKeys) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| StoreError::Folder { path: dir.display().to_string(), source })?;
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Deleted rows are overwritten with zeros, not left in free pages:
            // a deleted embedding cannot be recovered from the file.
            .pragma("secure_delete", "ON")
            .busy_timeout(Duration::from_secs(10));
        // A request waits at most ACQUIRE_TIMEOUT for a connection, then gets
        // a 503 (`unavailable`, with Retry-After) rather than hanging.
        migrate(&options).await?;
        let pool =
            SqlitePoolOptions::new().max_connections(4).acquire_timeout(ACQUIRE_TIMEOUT).connect_with(options).await?;
        Ok(Self { pool, keys })
    }

    /// After a deletion: copies the WAL into the database (where
    /// `secure_delete` has zeroed the deleted rows) and truncates it, so the
    /// write-ahead log keeps no copy of what was deleted. Best effort: with a
    /// reader mid-transaction the checkpoint is partial and the next deletion
    /// (or SQLite's own checkpoints) finishes it.
    async fn purge_wal(&self) {
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&self.pool).await {
            Ok((0, _, _)) => {}
            Ok((busy, log, done)) => tracing::warn!(busy, log, done, "WAL checkpoint after a deletion was partial"),
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint after a deletion failed"),
        }
    }

    /// Purges the WAL when `deleted`, and passes it on.
    async fn purged(&self, deleted: bool) -> bool {
        if deleted {
            self.purge_wal().await;
        }
        deleted
    }
}

super::database_impl::database_impl!(Sqlite {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    /// Taken online with `VACUUM INTO`: the copy is one transaction's
    /// snapshot, compacted, without WAL. Restore by stopping the service and
    /// putting the copy in place of the database file (and removing its
    /// `-wal` and `-shm` files).
    async fn backup(&self, dest: &Path) -> StoreResult<()> {
        if dest.exists() {
            return Err(StoreError::Corrupt(format!("{} already exists; back up to a new file", dest.display())));
        }
        let dest = dest.to_str().ok_or_else(|| StoreError::Corrupt("the backup path is not UTF-8".into()))?;
        sqlx::query("VACUUM INTO ?").bind(dest).execute(&self.pool).await?;
        Ok(())
    }

    /// `PRAGMA integrity_check`.
    async fn integrity_check(&self) -> StoreResult<String> {
        let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check").fetch_all(&self.pool).await?;
        Ok(rows.join("; "))
    }

    async fn delete_person(&self, id: &str, actor: &str) -> StoreResult<bool> {
        Ok(self.purged(persons::delete(&self.pool, id, actor).await?).await)
    }

    async fn delete_face(&self, person_id: &str, face_id: &str, actor: &str) -> StoreResult<bool> {
        Ok(self.purged(faces::delete(&self.pool, person_id, face_id, actor).await?).await)
    }

    async fn delete_face_by_id(&self, face_id: &str, actor: &str) -> StoreResult<bool> {
        Ok(self.purged(unassigned::delete(&self.pool, face_id, actor).await?).await)
    }

    async fn merge_persons(&self, into: &str, from: &[&str], actor: &str) -> StoreResult<Vec<String>> {
        let moved = unassigned::merge_persons(&self.pool, into, from, actor).await?;
        self.purge_wal().await;
        Ok(moved)
    }

    async fn purge_unassigned(&self, before: &str, actor: &str) -> StoreResult<Vec<String>> {
        let gone = unassigned::purge(&self.pool, before, actor).await?;
        self.purged(!gone.is_empty()).await;
        Ok(gone)
    }

    async fn replace_values(&self, values: &[(super::StoredValue, Vec<u8>)]) -> StoreResult<u64> {
        // The values replaced must not linger in the WAL either.
        let done = data_keys::replace_values(&self.pool, values).await?;
        self.purged(done > 0).await;
        Ok(done)
    }

    async fn prune_embeddings(&self, model: Option<&str>, actor: &str) -> StoreResult<u64> {
        // The pruned embeddings' bytes must not linger in the WAL.
        let deleted = embedder_switch::prune(&self.pool, model, actor).await?;
        self.purged(deleted > 0).await;
        Ok(deleted)
    }

    fn shared(&self) -> bool {
        false
    }

    async fn change_signals(&self) -> StoreResult<Option<BoxStream<'static, StoreResult<()>>>> {
        Ok(None)
    }
});
