//! Encryption at rest on the command line: where the data keys come from
//! (`--data-key-file`, `VISAGE_DATA_KEY`, `--previous-data-key-file`), and
//! `visage data-key generate` / `rotate`.
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use super::{Threads, runtime};
use visage_service::sealing::{DataKey, DataKeys, generate, parse_key, read_key_file};

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

#[derive(Subcommand, Debug)]
pub enum DataKeyCommand {
    /// Write a new random data key to FILE (mode 0600; never overwrites).
    Generate { file: PathBuf },
    /// Reseal every embedding and crop with the key in --to, while the
    /// service keeps serving: first restart every replica with
    /// `--data-key-file NEW --previous-data-key-file OLD`. Resumable: run it
    /// again after an interruption. Also seals a database's clear values
    /// (then --to may be its current key).
    Rotate {
        /// The key to reseal with.
        #[arg(long)]
        to: PathBuf,
        #[command(flatten)]
        db: super::DbArg,
    },
}

pub fn data_key(action: DataKeyCommand) -> Result<ExitCode> {
    match action {
        DataKeyCommand::Generate { file } => {
            let key = generate(&file)?;
            eprintln!(
                "wrote data key {} to {} (mode 0600): keep a copy apart from the backups",
                key.id(),
                file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        DataKeyCommand::Rotate { to, db } => rotate(&to, &db),
    }
}

fn rotate(to: &Path, db: &super::DbArg) -> Result<ExitCode> {
    super::admin::ensure_exists(&db.db)?;
    let new = read_key_file(to)?;
    let given = db.keys.keys()?;
    let mut others: Vec<DataKey> = Vec::new();
    if let Some(path) = &db.keys.data_key_file {
        others.push(read_key_file(path)?);
    }
    if let Some(path) = &db.keys.previous_data_key_file {
        others.push(read_key_file(path)?);
    }
    if others.is_empty() && given.is_on() {
        bail!("with VISAGE_DATA_KEY, give the key being replaced as --data-key-file instead");
    }
    others.retain(|k| k.id() != new.id());
    let keys = DataKeys::new(new, others);
    runtime(Threads::One)?.block_on(async {
        let store = visage_service::admin::open_store(&db.db, &keys).await?;
        let tty = std::io::stderr().is_terminal();
        let done = visage_service::admin::data_key::rotate(&store, |n| {
            if tty {
                eprint!("\r{n} values resealed");
            }
        })
        .await;
        store.close().await;
        let done = done?;
        eprintln!(
            "{}{} values resealed with data key {} in {:.1} s ({} passes); {} earlier keys retired",
            if tty { "\r" } else { "" },
            done.resealed,
            done.key,
            done.seconds,
            done.passes,
            done.retired
        );
        Ok(ExitCode::SUCCESS)
    })
}
