//! Whether the data keys given fit the database, checked when the store
//! opens (before any model loads): a database that lists keys is never
//! opened without one of them, nor with a wrong one, and nothing is written
//! in clear into it. The first key given to a database is listed; a new key
//! given with a listed one as previous (a rotation begins) is listed too.
use super::{Database, StoreError, StoreResult};
use crate::sealing::{DataKey, DataKeys};

/// Who the audit log names for a key listed at start-up.
const ACTOR: &str = "data-key";

fn listed(records: &[crate::domain::records::DataKeyRecord], key: &DataKey) -> bool {
    let id = key.id().to_string();
    records.iter().any(|r| r.id == id && r.check_value == key.check_value())
}

/// Checks `keys` against the database's list, listing the current key when
/// it is new and allowed to be.
pub async fn check(db: &dyn Database, keys: &DataKeys) -> StoreResult<()> {
    let records = db.data_keys().await?;
    let ids = records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>().join(", ");
    let Some(current) = keys.current() else {
        if records.is_empty() || keys.previous().iter().any(|k| listed(&records, k)) {
            return Ok(());
        }
        return Err(StoreError::DataKey(format!(
            "this database's embeddings and crops are encrypted (data key {ids}): give its key with \
             --data-key-file or VISAGE_DATA_KEY_FILE (or VISAGE_DATA_KEY)"
        )));
    };
    let id = current.id().to_string();
    if records.is_empty() || listed(&records, current) {
        db.add_data_key(&id, &current.check_value(), ACTOR).await?;
        return Ok(());
    }
    if keys.previous().iter().any(|k| listed(&records, k)) {
        tracing::info!(new = %id, listed = %ids, "a data key rotation begins: new values are sealed with the new key");
        db.add_data_key(&id, &current.check_value(), ACTOR).await?;
        return Ok(());
    }
    Err(StoreError::DataKey(format!(
        "the data key given ({id}) is not this database's ({ids}): a wrong key file? (during a rotation give the \
         new key and the previous one with --previous-data-key-file)"
    )))
}
