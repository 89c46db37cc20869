//! Person (and key) names: what the HTTP API, the import and the directory
//! enrollment all accept.

/// Longest name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("longer than {MAX_NAME_CHARS} characters")]
    TooLong,
    #[error("must not contain control characters")]
    ControlCharacter,
}

/// The name trimmed, when it is non-empty, of bounded length and free of
/// control characters.
pub fn valid_name(name: &str) -> Result<&str, NameError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::ControlCharacter);
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(valid_name("  Ada Lovelace \t"), Ok("Ada Lovelace"));
        assert_eq!(valid_name(" \n "), Err(NameError::Empty));
        assert_eq!(valid_name(&"é".repeat(MAX_NAME_CHARS)), Ok("é".repeat(MAX_NAME_CHARS).as_str()));
        assert_eq!(valid_name(&"x".repeat(MAX_NAME_CHARS + 1)), Err(NameError::TooLong));
        assert_eq!(valid_name("Ada\u{0}Lovelace"), Err(NameError::ControlCharacter));
    }
}
