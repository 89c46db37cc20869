//! API keys as the service checks them. On a database shared by replicas
//! every replica holds the valid keys in memory (the key ring): requests
//! are authenticated without a database round trip, and go on being
//! authenticated while the database is down. A key created or revoked here
//! changes the ring at once; one created or revoked by another replica
//! arrives with the change log (`follow.rs`), within a second. On SQLite
//! (one process) each request reads the key from the database.
use std::collections::HashMap;

use parking_lot::RwLock;
use secrecy::SecretString;

use super::Service;
use crate::domain::Scope;
use crate::domain::{ApiKey, AuditEntry, NewKey};
use crate::service::error::{Error, Result};
use crate::store::{Store, StoreResult, presented_id, verify_key};

/// The valid keys, by id, with the SHA-256 of their secrets.
#[derive(Default)]
pub(super) struct KeyRing {
    keys: RwLock<HashMap<String, (ApiKey, Vec<u8>)>>,
}

impl KeyRing {
    pub(super) async fn load(store: &Store) -> StoreResult<Self> {
        let keys = store.valid_keys().await?.into_iter().map(|(k, hash)| (k.id.clone(), (k, hash))).collect();
        Ok(Self { keys: RwLock::new(keys) })
    }

    /// Makes the ring agree with the database about one key.
    pub(super) async fn refresh(&self, store: &Store, id: &str) -> StoreResult<()> {
        match store.valid_key(id).await? {
            Some(found) => self.keys.write().insert(id.to_string(), found),
            None => self.keys.write().remove(id),
        };
        Ok(())
    }

    fn authenticate(&self, presented: &SecretString) -> Option<ApiKey> {
        let found = presented_id(presented).and_then(|id| self.keys.read().get(id).cloned());
        verify_key(presented, found)
    }

    fn len(&self) -> usize {
        self.keys.read().len()
    }
}

impl Service {
    /// The valid key a client presented, or None (malformed, unknown,
    /// revoked, or wrong secret: the caller cannot tell which).
    pub async fn authenticate(&self, presented: &SecretString) -> Result<Option<ApiKey>> {
        match &self.follow {
            Some(f) => Ok(f.keys.authenticate(presented)),
            None => Ok(self.store.authenticate(presented).await?),
        }
    }

    /// How many keys are valid.
    pub async fn active_keys(&self) -> Result<usize> {
        match &self.follow {
            Some(f) => Ok(f.keys.len()),
            None => Ok(usize::try_from(self.store.active_keys().await?).unwrap_or(usize::MAX)),
        }
    }

    pub async fn create_key(&self, name: &str, scope: Scope, actor: &str) -> Result<NewKey> {
        self.writable()?;
        let created = self.store.create_key(name, scope, actor).await?;
        if let Some(f) = &self.follow {
            f.keys.refresh(&self.store, &created.key.id).await?;
        }
        Ok(created)
    }

    pub async fn revoke_key(&self, id: &str, actor: &str) -> Result<()> {
        self.writable()?;
        let revoked = self.store.revoke_key(id, actor).await?;
        if let Some(f) = &self.follow {
            f.keys.refresh(&self.store, id).await?;
        }
        if revoked { Ok(()) } else { Err(Error::KeyNotFound(id.chars().take(64).collect())) }
    }

    /// Every key (never secrets), revoked ones included.
    pub async fn list_keys(&self) -> Result<Vec<ApiKey>> {
        Ok(self.store.list_keys().await?)
    }

    /// Up to `limit` audit entries, newest first, before `seq` when given.
    pub async fn audit_log(&self, limit: u32, before: Option<i64>) -> Result<Vec<AuditEntry>> {
        Ok(self.store.audit_log(limit, before).await?)
    }
}
