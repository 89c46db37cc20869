//! Between the store's records (ids as 32 hex digits, RFC 3339 strings) and
//! PostgreSQL's native types (`uuid`, `timestamptz`); the settled-transaction horizon.
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::domain::id_bits;
use crate::store::{StoreError, StoreResult};

/// The uuid an id spells; None when it is not one of ours (then no row has it).
pub(super) fn uuid(id: &str) -> Option<Uuid> {
    id_bits(id).map(Uuid::from_u128)
}

/// The uuid of an id about to be written: one that is not ours is refused.
pub(super) fn new_uuid(id: &str) -> StoreResult<Uuid> {
    uuid(id).ok_or_else(|| StoreError::Corrupt(format!("{id:?} is not an id of this service (32 hex digits)")))
}

/// The uuids of those ids that can name a row.
pub(super) fn uuids(ids: &[&str]) -> Vec<Uuid> {
    ids.iter().filter_map(|id| uuid(id)).collect()
}

/// An id as the store gives it: 32 lowercase hex digits.
pub(super) fn id(u: Uuid) -> String {
    u.simple().to_string()
}

/// A stored timestamp (RFC 3339) as PostgreSQL takes it.
pub(super) fn at(s: &str) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| StoreError::Corrupt(format!("timestamp {s:?}: {e}")))
}

/// A timestamp read back, in RFC 3339 UTC as [`crate::store::now`] writes it.
pub(super) fn text(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC).format(&Rfc3339).unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}

/// The oldest transaction still running: rows of older transactions are
/// settled (committed or rolled back); no row can appear among them any more.
/// The change log and the outbox read only those.
pub(super) const XMIN: &str = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_timestamps_round_trip() {
        let i = crate::domain::new_id();
        assert_eq!(id(uuid(&i).unwrap()), i);
        assert_eq!(uuid("ffff"), None);
        assert_eq!(uuids(&[&i, "nope"]).len(), 1);
        assert!(new_uuid("0190-not-hex").is_err());
        let now = crate::store::now();
        assert_eq!(text(at(&now).unwrap()), now);
        assert_eq!(text(at("2026-12-01T18:00:00+01:00").unwrap()), "2026-12-01T17:00:00Z");
        assert!(at("yesterday").is_err());
    }
}
