//! Persistent storage: persons, their enrolled faces, API keys and the
//! audit log. [`Database`] is the interface, one method per operation;
//! [`Store`] is the handle the rest of the program holds (cheap to clone),
//! with the key format and hashing that every database shares. SQLite
//! (`sqlite/`, WAL mode, migrations from `migrations/sqlite/`) is the
//! embedded default; PostgreSQL (`postgres/`, `migrations/postgres/`) is
//! the store several replicas share.
mod database;
mod database_impl;
mod keys;
mod location;
mod postgres;
mod sqlite;

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

pub use crate::domain::event::{DeleteReason, FacePlace, PersonRef};
pub use crate::domain::records::{
    ApiKey, AssignTo, AuditEntry, Change, ChangePos, Crop, FaceExport, FaceRecord, ModelCount, NewFace, NewKey, Owner,
    Person, Regroup, StoredEmbedding, Switched, UnassignedEmbedding, now,
};
pub use crate::domain::webhook::{Delivery, NewEvent, Outcome, StoredEvent, Webhook, WebhookChange, WebhookPlace};
pub use database::Database;
pub use keys::{presented_id, verify as verify_key};
pub use location::Location;

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
    #[error("{0}")]
    Location(String),
    /// The operation is not one this database offers (the message says what to use).
    #[error("{0}")]
    Unsupported(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The store: a shared handle on one [`Database`], whose methods it offers.
#[derive(Clone)]
pub struct Store {
    db: Arc<dyn Database>,
}

impl Store {
    /// Opens (creating if needed) the store `--db` names (see [`Location`])
    /// and applies its migrations.
    pub async fn open(db: &Path) -> StoreResult<Self> {
        match Location::parse(db)? {
            Location::Sqlite(path) => Ok(Self::new(sqlite::Sqlite::open(&path).await?)),
            Location::Postgres(url) => Ok(Self::new(postgres::Postgres::open(&url).await?)),
        }
    }

    pub fn new(db: impl Database + 'static) -> Self {
        Self { db: Arc::new(db) }
    }
}

impl Deref for Store {
    type Target = dyn Database;

    fn deref(&self) -> &Self::Target {
        self.db.as_ref()
    }
}

/// An embedding as stored: its values as little-endian f32s.
pub fn embedding_to_blob(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn blob_to_embedding(blob: &[u8]) -> StoreResult<Vec<f32>> {
    if !blob.len().is_multiple_of(4) {
        return Err(StoreError::Corrupt(format!("embedding blob of {} bytes", blob.len())));
    }
    Ok(blob.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
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
