//! Where the data keys come from: `--data-key-file`, `VISAGE_DATA_KEY`,
//! `--previous-data-key-file` (serve and every command that opens a database).
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use visage_service::sealing::{DataKey, DataKeys, parse_key, read_key_file};

/// The data keys: every flag has a `VISAGE_*` environment equivalent.
#[derive(Args, Debug, Clone, Default)]
pub struct DataKeyArgs {
    /// Seal every embedding, kept crop and saved graph with this key (32
    /// random bytes: `visage data-key generate FILE`); without it they are
    /// stored in clear. Once a database holds sealed values it is never
    /// opened without its key. Or give the key itself in VISAGE_DATA_KEY
    /// (hex or base64).
    #[arg(long, env = "VISAGE_DATA_KEY_FILE", global = true)]
    pub data_key_file: Option<PathBuf>,
    /// During a rotation, the key being replaced: it still opens what it
    /// sealed; everything new is sealed with --data-key-file.
    #[arg(long, env = "VISAGE_PREVIOUS_DATA_KEY_FILE", global = true)]
    pub previous_data_key_file: Option<PathBuf>,
}

impl DataKeyArgs {
    /// The keys given (none: clear), read and checked.
    pub fn keys(&self) -> Result<DataKeys> {
        let from_env = std::env::var_os("VISAGE_DATA_KEY").filter(|v| !v.is_empty());
        let current = match (&self.data_key_file, from_env) {
            (Some(_), Some(_)) => bail!("give the data key once: --data-key-file or VISAGE_DATA_KEY, not both"),
            (Some(path), None) => Some(read_key_file(path)?),
            (None, Some(value)) => {
                let raw = value.into_encoded_bytes();
                Some(DataKey::new(&parse_key(&raw).context("VISAGE_DATA_KEY")?))
            }
            (None, None) => None,
        };
        let previous = self.previous_data_key_file.as_deref().map(read_key_file).transpose()?;
        match (current, previous) {
            (Some(c), p) => Ok(DataKeys::new(c, p.into_iter().collect())),
            (None, Some(_)) => bail!("--previous-data-key-file needs the new key (--data-key-file) beside it"),
            (None, None) => Ok(DataKeys::none()),
        }
    }
}
