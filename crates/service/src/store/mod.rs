//! Persistent storage: persons, their enrolled faces, API keys and the
//! audit log. [`Database`] is the interface, one method per operation;
//! [`Store`] is the handle the rest of the program holds (cheap to clone),
//! with the key format and hashing that every database shares. SQLite
//! (`sqlite/`, WAL mode, migrations from `migrations/sqlite/`) is the
//! embedded default; PostgreSQL (`postgres/`, `migrations/postgres/`) is
//! the store several replicas share.
mod database;
mod database_impl;
mod key_check;
mod keys;
mod location;
mod postgres;
mod sqlite;

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

pub use crate::domain::event::{DeleteReason, FacePlace, PersonRef};
pub use crate::domain::records::{
    ApiKey, AssignTo, AuditEntry, Change, ChangePos, Crop, DataKeyRecord, FaceExport, FaceRecord, ModelCount, NewFace,
    NewKey, Owner, Person, Regroup, SealedColumn, StoredEmbedding, StoredValue, Switched, UnassignedEmbedding, now,
};
pub use crate::domain::webhook::{Delivery, NewEvent, Outcome, StoredEvent, Webhook, WebhookChange, WebhookPlace};
pub use database::Database;
pub use keys::{presented_id, verify as verify_key};
pub use location::Location;

use crate::sealing::{DataKeys, Sealed};

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
    /// A sealed value that does not open (altered, moved, or a key missing).
    #[error("{0}")]
    Sealed(#[from] crate::sealing::SealError),
    /// The data key given does not fit the database (missing or wrong).
    #[error("{0}")]
    DataKey(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The store: a shared handle on one [`Database`], whose methods it offers,
/// and the data keys its values are sealed with.
#[derive(Clone)]
pub struct Store {
    db: Arc<dyn Database>,
    keys: DataKeys,
}

impl Store {
    /// Opens (creating if needed) the store `--db` names (see [`Location`])
    /// and applies its migrations; without a data key (refused when the
    /// database lists one).
    pub async fn open(db: &Path) -> StoreResult<Self> {
        Self::open_with(db, DataKeys::none()).await
    }

    /// Opens the store with the data keys given, checked against those the
    /// database lists ([`key_check`]).
    pub async fn open_with(db: &Path, keys: DataKeys) -> StoreResult<Self> {
        let store = match Location::parse(db)? {
            Location::Sqlite(path) => Self::new(sqlite::Sqlite::open(&path, keys.clone()).await?, keys),
            Location::Postgres(url) => Self::new(postgres::Postgres::open(&url, keys.clone()).await?, keys),
        };
        key_check::check(store.db.as_ref(), &store.keys).await?;
        Ok(store)
    }

    /// `db` must seal with the same `keys`.
    fn new(db: impl Database + 'static, keys: DataKeys) -> Self {
        Self { db: Arc::new(db), keys }
    }

    /// The data keys the store seals with (the saved index and exports use them too).
    pub fn sealing(&self) -> &DataKeys {
        &self.keys
    }
}

impl Deref for Store {
    type Target = dyn Database;

    fn deref(&self) -> &Self::Target {
        self.db.as_ref()
    }
}

/// An embedding as stored: little-endian f32s, sealed (bound to the face
/// and the model) when a data key is given.
pub(crate) fn seal_embedding(keys: &DataKeys, face: &str, model: &str, values: &[f32]) -> Vec<u8> {
    keys.seal(Sealed::Embedding { face, model }, embedding_to_blob(values))
}

/// An embedding's values from its stored form, sealed or clear.
pub(crate) fn open_embedding(keys: &DataKeys, face: &str, model: &str, stored: &[u8]) -> StoreResult<Vec<f32>> {
    blob_to_embedding(&keys.open(Sealed::Embedding { face, model }, stored)?)
}

/// A kept crop as stored: its PNG, sealed (bound to the face) when a data key is given.
pub(crate) fn seal_crop(keys: &DataKeys, face: &str, png: &[u8]) -> Vec<u8> {
    keys.seal(Sealed::Crop { face }, png.to_vec())
}

/// A kept crop's PNG from its stored form, sealed or clear.
pub(crate) fn open_crop(keys: &DataKeys, face: &str, stored: Vec<u8>) -> StoreResult<Vec<u8>> {
    Ok(match keys.open(Sealed::Crop { face }, &stored)? {
        std::borrow::Cow::Borrowed(_) => stored,
        std::borrow::Cow::Owned(png) => png,
    })
}

/// An embedding's clear bytes: its values as little-endian f32s.
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
