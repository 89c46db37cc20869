//! The admin commands of the `visage` binary: bulk enrollment from folders,
//! export and import, person management and re-embedding. They work on the
//! database directly (with the models loaded when photos are analysed), with
//! the same service layer, checks and audit log as the HTTP API.
pub mod data_key;
pub mod enroll_dir;
pub mod faces_import;
pub mod persons;
pub mod reembed;
pub mod transfer;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::engine::Engine;
use crate::sealing::DataKeys;
use crate::service::{Service, ServiceConfig, ThresholdChoice};
use crate::store::{Location, Store};
use crate::vision::{Pipeline, PipelineConfig};

/// Who the audit log names for changes made from the command line.
pub const ACTOR: &str = "cli";

/// Opens the database with the data keys given, creating it (and its
/// folder) when absent.
pub async fn open_store(db: &Path, keys: &DataKeys) -> Result<Store> {
    Store::open_with(db, keys.clone()).await.with_context(|| format!("opening {}", Location::redact(db)))
}

/// The service with its models loaded, for the commands that analyse photos
/// or report on the gallery; its thresholds are set as `thresholds` asks.
pub async fn open_service(
    models_dir: &Path,
    pipeline: PipelineConfig,
    db: &Path,
    keys: &DataKeys,
    workers: usize,
    base: ServiceConfig,
    thresholds: &ThresholdChoice,
) -> Result<Service> {
    // The store first: a missing or wrong data key is told before the models load.
    let store = open_store(db, keys).await?;
    let dir = models_dir.to_path_buf();
    let pipeline = tokio::task::spawn_blocking(move || Pipeline::load(&dir, pipeline))
        .await
        .context("model loading panicked")??;
    let config = thresholds.apply(base, &pipeline, models_dir)?;
    // A queue deep enough that the command's own parallelism never hits it.
    let engine = Engine::start(Arc::new(pipeline), workers, workers * 4)?;
    Ok(Service::new(engine, store, config).await?)
}

/// A progress bar with rate and ETA on a terminal; silent otherwise.
pub fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    let template = format!("{{bar:30}} {{pos}}/{{len}} {what} · {{per_sec}} · ETA {{eta}} {{msg}}");
    if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}
