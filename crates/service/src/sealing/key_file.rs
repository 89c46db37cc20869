//! Data key files and values: 32 random bytes, written by `visage data-key
//! generate` as 64 hex digits and a newline (mode 0600); read as 32 raw
//! bytes, 64 hex digits or standard base64 (as a secret manager may hold
//! them), surrounding whitespace aside.
use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;

use super::{DataKey, KEY_LEN};

/// The largest key file read (a key is at most 44 characters and a newline).
const MAX_FILE: u64 = 1024;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read the data key file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write the data key file {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("the data key file {0} is larger than a key ({MAX_FILE} bytes at most)")]
    TooLarge(String),
    #[error(
        "a data key is 32 bytes: raw, as 64 hex digits, or as 44 characters of base64 (found {0} bytes); \
         `visage data-key generate FILE` writes one"
    )]
    Malformed(usize),
    #[error("the data key is all zeros: not a random key")]
    Zero,
}

/// A key's 32 bytes from a file's or a variable's contents.
pub fn parse_key(raw: &[u8]) -> Result<[u8; KEY_LEN], KeyFileError> {
    let key: [u8; KEY_LEN] = if raw.len() == KEY_LEN {
        raw.try_into().map_err(|_| KeyFileError::Malformed(raw.len()))?
    } else {
        let text = raw.trim_ascii();
        let decoded = match text.len() {
            64 => hex::decode(text).ok(),
            44 => base64::engine::general_purpose::STANDARD.decode(text).ok(),
            _ => None,
        };
        decoded.and_then(|d| d.try_into().ok()).ok_or(KeyFileError::Malformed(text.len()))?
    };
    if key == [0u8; KEY_LEN] {
        return Err(KeyFileError::Zero);
    }
    Ok(key)
}

/// Reads a key file. Warns when others than its owner may read it.
pub fn read_key_file(path: &Path) -> Result<DataKey, KeyFileError> {
    let shown = path.display().to_string();
    let read = |source| KeyFileError::Read { path: shown.clone(), source };
    let meta = std::fs::metadata(path).map_err(read)?;
    if meta.len() > MAX_FILE {
        return Err(KeyFileError::TooLarge(shown));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(file = %shown, mode = format!("{mode:o}"), "the data key file may be read by others than its owner (chmod 600)");
        }
    }
    let raw = std::fs::read(path).map_err(read)?;
    Ok(DataKey::new(&parse_key(&raw)?))
}

/// Writes a new random key to `path` (which must not exist) with mode 0600.
pub fn generate(path: &Path) -> Result<DataKey, KeyFileError> {
    let shown = path.display().to_string();
    let write = |source| KeyFileError::Write { path: shown.clone(), source };
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key).map_err(|e| write(std::io::Error::other(e)))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(write)?;
    file.write_all(format!("{}\n", hex::encode(key)).as_bytes()).map_err(write)?;
    file.sync_all().map_err(write)?;
    Ok(DataKey::new(&key))
}
