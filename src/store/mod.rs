//! Persistent storage in SQLite (WAL mode): persons and their enrolled faces.
//! Migrations in `migrations/` are embedded and applied when the store opens.
mod audit;
mod faces;
mod keys;
mod persons;
mod transfer;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub(crate) use crate::domain::new_id;
use crate::domain::{BBox, Point, Quality};

pub use audit::AuditEntry;
pub use faces::NewFace;
pub use keys::{ApiKey, NewKey};
pub use transfer::FaceExport;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no person with id {0:?}")]
    PersonNotFound(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("cannot create the database folder {path}: {source}")]
    Folder { path: String, source: std::io::Error },
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub id: String,
    pub name: String,
    /// Free-form JSON object given by the client (at most 16 KiB).
    pub metadata: Option<serde_json::Value>,
    pub created_at: String,
    pub updated_at: String,
    /// Enrolled faces.
    pub face_count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceRecord {
    pub id: String,
    pub person_id: String,
    #[serde(rename = "box")]
    pub bbox: BBox,
    pub landmarks: [Point; 5],
    pub score: f32,
    pub quality: Quality,
    /// The embedder that produced the stored embedding.
    pub model: String,
    pub created_at: String,
}

/// One stored embedding, as loaded into the in-memory gallery.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEmbedding {
    pub face_id: String,
    pub person_id: String,
    pub model: String,
    pub values: Vec<f32>,
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}

pub fn embedding_to_blob(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn blob_to_embedding(blob: &[u8]) -> StoreResult<Vec<f32>> {
    if !blob.len().is_multiple_of(4) {
        return Err(StoreError::Corrupt(format!("embedding blob of {} bytes", blob.len())));
    }
    Ok(blob.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

impl Store {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
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
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// A trivial query: is the database answering?
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// A consistent copy of the whole database at `dest` (a new file), taken
    /// online with `VACUUM INTO`: writers may continue; the copy is one
    /// transaction's snapshot, compacted, without WAL. Restore by stopping
    /// the service and putting the copy in place of the database file (and
    /// removing its `-wal` and `-shm` files).
    pub async fn backup(&self, dest: &Path) -> StoreResult<()> {
        if dest.exists() {
            return Err(StoreError::Corrupt(format!("{} already exists; back up to a new file", dest.display())));
        }
        let dest = dest.to_str().ok_or_else(|| StoreError::Corrupt("the backup path is not UTF-8".into()))?;
        sqlx::query("VACUUM INTO ?").bind(dest).execute(&self.pool).await?;
        Ok(())
    }

    /// `PRAGMA integrity_check`: "ok" or SQLite's list of problems.
    pub async fn integrity_check(&self) -> StoreResult<String> {
        let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check").fetch_all(&self.pool).await?;
        Ok(rows.join("; "))
    }

    /// After a deletion: copies the WAL into the database (where
    /// `secure_delete` has zeroed the deleted rows) and truncates it, so the
    /// write-ahead log keeps no copy of what was deleted. Best effort: with a
    /// reader mid-transaction the checkpoint is partial and the next deletion
    /// (or SQLite's own checkpoints) finishes it.
    pub(crate) async fn purge_wal(&self) {
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&self.pool).await {
            Ok((0, _, _)) => {}
            Ok((busy, log, done)) => tracing::warn!(busy, log, done, "WAL checkpoint after a deletion was partial"),
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint after a deletion failed"),
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_round_trip_through_little_endian_blobs() {
        let v = vec![0.5f32, -1.25, 3.0e-7, f32::MAX];
        let blob = embedding_to_blob(&v);
        assert_eq!(blob.len(), 16);
        assert_eq!(&blob[0..4], &0.5f32.to_le_bytes());
        assert_eq!(blob_to_embedding(&blob).unwrap(), v);
        assert!(blob_to_embedding(&[1, 2, 3]).is_err());
    }
}
