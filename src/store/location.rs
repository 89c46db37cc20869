//! Where the store lives, as `--db` gives it: a SQLite file path, or the
//! same as a `sqlite://` URL. Any other URL is refused with a clear message
//! instead of being taken for a file path (before, `postgres://user@host/db`
//! silently created a SQLite file under a folder named `postgres:`).
use std::path::{Path, PathBuf};

use super::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
}

impl Location {
    pub fn parse(db: &Path) -> Result<Self, StoreError> {
        let Some(text) = db.to_str() else { return Ok(Location::Sqlite(db.to_path_buf())) };
        if let Some(path) = text.strip_prefix("sqlite://").or_else(|| text.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err(StoreError::Location(format!("{text:?} names no file: give sqlite://PATH")));
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        match text.split_once("://") {
            Some((scheme, _)) if is_scheme(scheme) => Err(StoreError::Location(format!(
                "this build cannot store in a {scheme}:// database; give a SQLite file path or sqlite://PATH"
            ))),
            _ => Ok(Location::Sqlite(db.to_path_buf())),
        }
    }
}

/// A URL scheme: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Location, String> {
        Location::parse(Path::new(s)).map_err(|e| e.to_string())
    }

    #[test]
    fn paths_and_sqlite_urls_are_files_and_other_urls_are_refused() {
        let file = |p: &str| Ok(Location::Sqlite(PathBuf::from(p)));
        assert_eq!(parse("data/visage.db"), file("data/visage.db"));
        assert_eq!(parse("/var/lib/visage/v.db"), file("/var/lib/visage/v.db"));
        assert_eq!(parse("sqlite://data/v.db"), file("data/v.db"));
        assert_eq!(parse("sqlite:///abs/v.db"), file("/abs/v.db"));
        assert_eq!(parse("sqlite:v.db"), file("v.db"));
        assert_eq!(parse("odd:name.db"), file("odd:name.db"));
        assert!(parse("sqlite://").unwrap_err().contains("names no file"));
        for url in ["postgres://user@host:5432/db", "postgresql://h/db", "mysql://h/db", "HTTP://x"] {
            let e = parse(url).unwrap_err();
            assert!(e.contains("cannot store in a") && e.contains("sqlite://PATH"), "{url}: {e}");
        }
    }
}
