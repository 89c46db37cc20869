//! Where the store lives, as `--db` gives it: a SQLite file path (or the
//! same as a `sqlite://` URL), or a `postgres://` / `postgresql://` URL. Any
//! other URL is refused with a clear message instead of being taken for a
//! file path (before, `mysql://user@host/db` would have created a SQLite
//! file under a folder named `mysql:`). A PostgreSQL URL may hold a
//! password: it is kept secret, and [`Location::redact`] is what messages show.
use std::path::{Path, PathBuf};

use secrecy::SecretString;

use super::StoreError;

#[derive(Debug, Clone)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(SecretString),
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
            Some(("postgres" | "postgresql", _)) => Ok(Location::Postgres(SecretString::from(text.to_string()))),
            Some((scheme, _)) if is_scheme(scheme) => Err(StoreError::Location(format!(
                "this build cannot store in a {scheme}:// database; give a SQLite file path, sqlite://PATH \
                 or postgres://USER@HOST:PORT/DATABASE"
            ))),
            _ => Ok(Location::Sqlite(db.to_path_buf())),
        }
    }

    /// `--db` as messages and logs may show it: a URL's password hidden.
    pub fn redact(db: &Path) -> String {
        let text = db.to_string_lossy();
        let Some((scheme, rest)) = text.split_once("://") else { return text.into_owned() };
        let (authority, tail) = rest.find(['/', '?']).map_or((rest, ""), |i| rest.split_at(i));
        let authority = match authority.rsplit_once('@') {
            Some((user_info, host)) => match user_info.split_once(':') {
                Some((user, _)) => format!("{user}:***@{host}"),
                None => authority.to_string(),
            },
            None => authority.to_string(),
        };
        let tail = match tail.split_once('?') {
            Some((path, query)) => {
                let params: Vec<String> = query
                    .split('&')
                    .map(|p| match p.split_once('=') {
                        Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                        _ => p.to_string(),
                    })
                    .collect();
                format!("{path}?{}", params.join("&"))
            }
            None => tail.to_string(),
        };
        format!("{scheme}://{authority}{tail}")
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
    use secrecy::ExposeSecret;

    use super::*;

    fn parse(s: &str) -> Result<String, String> {
        match Location::parse(Path::new(s)).map_err(|e| e.to_string())? {
            Location::Sqlite(p) => Ok(format!("file {}", p.display())),
            Location::Postgres(url) => Ok(format!("pg {}", url.expose_secret())),
        }
    }

    #[test]
    fn paths_and_sqlite_urls_are_files_postgres_urls_are_postgres_and_others_are_refused() {
        let file = |p: &str| Ok(format!("file {p}"));
        assert_eq!(parse("data/visage.db"), file("data/visage.db"));
        assert_eq!(parse("/var/lib/visage/v.db"), file("/var/lib/visage/v.db"));
        assert_eq!(parse("sqlite://data/v.db"), file("data/v.db"));
        assert_eq!(parse("sqlite:///abs/v.db"), file("/abs/v.db"));
        assert_eq!(parse("sqlite:v.db"), file("v.db"));
        assert_eq!(parse("odd:name.db"), file("odd:name.db"));
        assert!(parse("sqlite://").unwrap_err().contains("names no file"));
        for url in ["postgres://user@host:5432/db", "postgresql://h/db"] {
            assert_eq!(parse(url), Ok(format!("pg {url}")));
        }
        for url in ["mysql://h/db", "HTTP://x", "postgres+x://h/db"] {
            let e = parse(url).unwrap_err();
            assert!(e.contains("cannot store in a") && e.contains("sqlite://PATH"), "{url}: {e}");
        }
    }

    #[test]
    fn passwords_never_reach_messages() {
        let r = |s: &str| Location::redact(Path::new(s));
        assert_eq!(r("postgres://ann:s3cret@db:5432/visage"), "postgres://ann:***@db:5432/visage");
        assert_eq!(r("postgres://ann:p@ss@db/v?sslmode=require"), "postgres://ann:***@db/v?sslmode=require");
        assert_eq!(r("postgres://db/v?user=ann&password=s3cret"), "postgres://db/v?user=ann&password=***");
        assert_eq!(r("postgres://ann@db/v"), "postgres://ann@db/v");
        assert_eq!(r("data/visage.db"), "data/visage.db");
    }
}
