//! Ids of persons and faces: opaque, URL-safe, time-ordered.

/// A new id (UUID v7: time-ordered, 32 lowercase hex digits).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// Whether `id` has the shape of an id this service issues.
pub fn is_valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

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
