//! The administration commands: enroll a folder, export and import, list and
//! delete persons, re-embed, manage keys, back up. Each opens the store (and,
//! where it runs inference, the service) on its own runtime and prints what
//! it did.
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;

use super::DbArg;
use super::args::{PipelineArgs, ScopeArg};
use super::{Threads, runtime};
use visage_service::domain::FaceChoice;
use visage_service::sealing::DataKeys;
use visage_service::service::{ServiceConfig, ThresholdChoice};
use visage_service::store::{Location, Store};

#[derive(Subcommand, Debug)]
pub enum PersonsCommand {
    /// Every person as JSON lines, in creation order.
    List,
    /// A person with their faces (never embeddings) as JSON.
    Show { id: String },
    /// Delete a person and all their faces.
    Delete { id: String },
    /// Move every face of the persons FROM to INTO and delete them, in one transaction.
    Merge {
        into: String,
        #[arg(required = true)]
        from: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key and print it (the only time it is shown).
    Create {
        #[arg(long, value_enum)]
        scope: ScopeArg,
        /// A label for the key (who or what uses it).
        #[arg(long)]
        name: String,
        /// Print the key alone, for scripts.
        #[arg(long)]
        quiet: bool,
    },
    /// List keys (ids, names, scopes; never secrets) as JSON.
    List,
    /// Revoke a key by id.
    Revoke { id: String },
}

/// Says that nothing has this id, and fails.
fn not_found(what: &str, id: &str) -> ExitCode {
    eprintln!("visage: error: no {what} with id {id:?}");
    ExitCode::FAILURE
}

pub fn enroll_dir(
    dir: &Path,
    choice: FaceChoice,
    workers: Option<usize>,
    keep_crops: bool,
    db: &DbArg,
    p: &PipelineArgs,
) -> Result<ExitCode> {
    anyhow::ensure!(dir.is_dir(), "{} is not a folder", dir.display());
    let workers = workers.unwrap_or_else(visage_service::server::default_workers).max(1);
    let runtime = runtime(Threads::Many)?;
    runtime.block_on(async {
        let service = bulk_service(p, db, workers, keep_crops).await?;
        let started = std::time::Instant::now();
        let s = visage_service::admin::enroll_dir::run(&service, dir, choice, workers).await?;
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "{} photos in {:.1} s ({:.1}/s): {} enrolled, {} already enrolled, {} skipped; {} persons created, {} existing",
            s.photos,
            secs,
            s.photos as f64 / secs.max(1e-9),
            s.enrolled,
            s.already_enrolled,
            s.skipped.len(),
            s.persons_created,
            s.persons_existing
        );
        for (reason, n) in &s.skipped_by_reason {
            eprintln!("  skipped, {reason}: {n}");
        }
        for skipped in s.skipped.iter().take(20) {
            eprintln!("  {}: {}", skipped.path.display(), skipped.message);
        }
        if s.skipped.len() > 20 {
            eprintln!("  ... and {} more (all in the JSON summary on standard output)", s.skipped.len() - 20);
        }
        println!("{}", serde_json::to_string_pretty(&s)?);
        service.store().close().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// The service a bulk command (enroll-dir, faces import) analyses photos with.
async fn bulk_service(
    p: &PipelineArgs,
    db: &DbArg,
    workers: usize,
    keep_crops: bool,
) -> Result<visage_service::service::Service> {
    let config = ServiceConfig { keep_crops, ..ServiceConfig::default() };
    let keys = db.keys.keys()?;
    let thresholds = ThresholdChoice::default();
    visage_service::admin::open_service(&p.models_dir, p.config(), &db.db, &keys, workers, config, &thresholds).await
}

pub fn faces_import(
    dir: &Path,
    unassigned: bool,
    choice: FaceChoice,
    workers: Option<usize>,
    keep_crops: bool,
    db: &DbArg,
    p: &PipelineArgs,
) -> Result<ExitCode> {
    use visage_service::admin::faces_import::{ImportAs, run};
    anyhow::ensure!(dir.is_dir(), "{} is not a folder", dir.display());
    let workers = workers.unwrap_or_else(visage_service::server::default_workers).max(1);
    runtime(Threads::Many)?.block_on(async {
        let service = bulk_service(p, db, workers, keep_crops).await?;
        let started = std::time::Instant::now();
        let as_ = if unassigned { ImportAs::Unassigned } else { ImportAs::FolderPerson };
        let s = run(&service, dir, as_, choice, workers).await?;
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "{} photos in {:.1} s ({:.1}/s): {} imported ({} faces kept, {} refused), {} already imported, {} skipped",
            s.photos,
            secs,
            s.photos as f64 / secs.max(1e-9),
            s.imported,
            s.faces_kept,
            s.faces_refused,
            s.already_imported,
            s.skipped.len()
        );
        for (reason, n) in &s.skipped_by_reason {
            eprintln!("  skipped, {reason}: {n}");
        }
        println!("{}", serde_json::to_string_pretty(&s)?);
        service.store().close().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Commands that read a database never create one: a SQLite file must
/// exist (a PostgreSQL database is checked by connecting to it).
pub(super) fn ensure_exists(db: &Path) -> Result<()> {
    if let Location::Sqlite(path) = Location::parse(db)? {
        anyhow::ensure!(path.is_file(), "no database at {}", path.display());
    }
    Ok(())
}

pub fn export(out: Option<&Path>, decrypt: bool, db: &DbArg) -> Result<ExitCode> {
    use visage_service::admin::transfer::export;
    ensure_exists(&db.db)?;
    runtime(Threads::One)?.block_on(async {
        let store = visage_service::admin::open_store(&db.db, &db.keys.keys()?).await?;
        let (persons, faces) = match out {
            Some(path) => {
                let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
                export(&store, &mut std::io::BufWriter::new(file), decrypt).await?
            }
            None => export(&store, &mut std::io::stdout().lock(), decrypt).await?,
        };
        let how = match store.sealing().current() {
            Some(k) if !decrypt => format!(", embeddings sealed with data key {}", k.id()),
            Some(_) => ", embeddings in clear (--decrypt)".to_string(),
            None => String::new(),
        };
        eprintln!("exported {persons} persons, {faces} faces{how}");
        Ok(ExitCode::SUCCESS)
    })
}

pub fn import(
    file: &Path,
    db: &DbArg,
    export_key: Option<&Path>,
    models_dir: &Path,
    embedder: Option<&str>,
) -> Result<ExitCode> {
    let manifest = visage_model::Manifest::load(models_dir)?;
    let plan = match embedder {
        Some(name) => manifest.embedder(name)?,
        None => manifest.default_embedder()?,
    };
    let model = visage_model::embedder_id(&plan).to_string();
    let input =
        std::io::BufReader::new(std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?);
    runtime(Threads::One)?.block_on(async {
        let store = visage_service::admin::open_store(&db.db, &db.keys.keys()?).await?;
        let file_keys = match export_key {
            Some(path) => DataKeys::opening_only(vec![visage_service::sealing::read_key_file(path)?]),
            None => store.sealing().clone(),
        };
        let s = visage_service::admin::transfer::import(&store, input, &model, None, &file_keys).await?;
        println!("{}", serde_json::to_string_pretty(&s)?);
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn persons(action: PersonsCommand, db: &DbArg) -> Result<ExitCode> {
    ensure_exists(&db.db)?;
    runtime(Threads::One)?.block_on(async {
        let store = visage_service::admin::open_store(&db.db, &db.keys.keys()?).await?;
        let code = match action {
            PersonsCommand::List => {
                let n = visage_service::admin::persons::list(&store, &mut std::io::stdout().lock()).await?;
                eprintln!("{n} persons");
                ExitCode::SUCCESS
            }
            PersonsCommand::Show { id } => match visage_service::admin::persons::show(&store, &id).await? {
                Some(v) => {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                    ExitCode::SUCCESS
                }
                None => not_found("person", &id),
            },
            PersonsCommand::Merge { into, from } => {
                anyhow::ensure!(!from.contains(&into), "a person cannot be merged into itself");
                let from: Vec<&str> = from.iter().map(String::as_str).collect();
                match store.merge_persons(&into, &from, visage_service::admin::ACTOR).await {
                    Ok(moved) => {
                        eprintln!("{} faces moved to {into}; deleted {}", moved.len(), from.join(", "));
                        ExitCode::SUCCESS
                    }
                    Err(visage_service::store::StoreError::PersonNotFound(id)) => not_found("person", &id),
                    Err(e) => return Err(e.into()),
                }
            }
            PersonsCommand::Delete { id } => {
                if visage_service::admin::persons::delete(&store, &id).await? {
                    eprintln!("deleted {id}");
                    ExitCode::SUCCESS
                } else {
                    not_found("person", &id)
                }
            }
        };
        store.close().await;
        Ok(code)
    })
}

pub fn keys(action: KeysCommand, db: &DbArg) -> Result<ExitCode> {
    use secrecy::ExposeSecret;
    let runtime = runtime(Threads::One)?;
    runtime.block_on(async {
        let store = visage_service::admin::open_store(&db.db, &db.keys.keys()?).await?;
        let code = match action {
            KeysCommand::Create { scope, name, quiet } => {
                let name =
                    visage_service::domain::valid_name(&name).map_err(|e| anyhow::anyhow!("invalid `name`: {e}"))?;
                let created = store.create_key(name, scope.into(), "cli").await?;
                if quiet {
                    println!("{}", created.secret.expose_secret());
                } else {
                    println!("{}", serde_json::to_string_pretty(&created.key)?);
                    println!("key (shown once, store it now): {}", created.secret.expose_secret());
                }
                ExitCode::SUCCESS
            }
            KeysCommand::List => {
                println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "keys": store.list_keys().await? }))?);
                ExitCode::SUCCESS
            }
            KeysCommand::Revoke { id } => {
                if store.revoke_key(&id, "cli").await? {
                    eprintln!("revoked {id}");
                    ExitCode::SUCCESS
                } else {
                    not_found("valid key", &id)
                }
            }
        };
        store.close().await;
        anyhow::Ok(code)
    })
}

/// `visage backup`: a consistent copy while the service runs, checked;
/// sealed values stay sealed unless `decrypt`.
pub fn backup(dest: &Path, decrypt: bool, db: &DbArg) -> Result<ExitCode> {
    let keys = db.keys.keys()?;
    runtime(Threads::One)?.block_on(async {
        ensure_exists(&db.db)?;
        let store = visage_service::admin::open_store(&db.db, &keys).await?;
        store.backup(dest).await.with_context(|| format!("backing up to {}", dest.display()))?;
        store.close().await;
        let copy_keys = match (decrypt, keys.current()) {
            (true, Some(_)) => keys.for_opening(),
            _ => keys.clone(),
        };
        let copy = Store::open_with(dest, copy_keys).await?;
        let opened = if decrypt { visage_service::admin::data_key::decrypt(&copy).await? } else { 0 };
        let check = copy.integrity_check().await?;
        copy.close().await;
        anyhow::ensure!(check == "ok", "the copy fails its integrity check: {check}");
        let how = if decrypt { format!(", {opened} values decrypted") } else { String::new() };
        eprintln!("backed up {} to {} (integrity ok{how})", db.db.display(), dest.display());
        Ok(ExitCode::SUCCESS)
    })
}
