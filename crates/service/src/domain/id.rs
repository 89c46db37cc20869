//! Ids of persons and faces: opaque, URL-safe, time-ordered.

/// A new id (UUID v7: time-ordered, 32 lowercase hex digits).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// Whether `id` has the shape of an id this service issues.
pub fn is_valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// An id as the 128-bit number its hex digits spell (compact in memory);
/// None when it is not shaped like one of ours.
pub fn id_bits(id: &str) -> Option<u128> {
    if is_valid_id(id) { u128::from_str_radix(id, 16).ok() } else { None }
}

/// The id whose hex digits spell `bits`.
pub fn id_from_bits(bits: u128) -> String {
    format!("{bits:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_bits() {
        let id = new_id();
        assert_eq!(id_from_bits(id_bits(&id).unwrap()), id);
        assert_eq!(id_from_bits(7), "00000000000000000000000000000007");
        assert_eq!(id_bits("0000000000000000000000000000000A"), None);
        assert_eq!(id_bits("f7"), None);
    }

    #[test]
    fn ids_are_32_lowercase_hex_digits() {
        let id = new_id();
        assert!(is_valid_id(&id), "{id}");
        assert_ne!(new_id(), id);
        for bad in ["", "../../etc/passwd", "ABCDEF0123456789ABCDEF0123456789", "0123456789abcdef0123456789abcdeg"] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }
}
