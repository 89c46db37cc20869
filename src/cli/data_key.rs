//! `visage data-key generate` / `rotate` (where the keys come from:
//! `data_key_args`).
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;

use super::{Threads, runtime};
use visage_service::sealing::{DataKey, DataKeys, generate, read_key_file};

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
