//! The admin commands of the `visage` binary: bulk enrollment from folders,
//! export and import, person management and re-embedding. They work on the
//! database directly (with the models loaded when photos are analysed), with
//! the same service layer, checks and audit log as the HTTP API.
pub mod enroll_dir;
pub mod persons;
pub mod reembed;
pub mod transfer;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::engine::Engine;
use crate::service::{Service, ServiceConfig, ThresholdChoice};
use crate::store::{Location, Store};
use crate::vision::{Pipeline, PipelineConfig};

/// Who the audit log names for changes made from the command line.
pub const ACTOR: &str = "cli";

/// Opens the database, creating it (and its folder) when absent.
pub async fn open_store(db: &Path) -> Result<Store> {
    Store::open(db).await.with_context(|| format!("opening {}", Location::redact(db)))
}

/// The service with its models loaded, for the commands that analyse photos
/// or report on the gallery; its thresholds are set as `thresholds` asks.
pub async fn open_service(
    models_dir: &Path,
    pipeline: PipelineConfig,
    db: &Path,
    workers: usize,
    base: ServiceConfig,
    thresholds: &ThresholdChoice,
) -> Result<Service> {
    let dir = models_dir.to_path_buf();
    let pipeline = tokio::task::spawn_blocking(move || Pipeline::load(&dir, pipeline))
        .await
        .context("model loading panicked")??;
    let config = thresholds.apply(base, &pipeline, models_dir)?;
    // A queue deep enough that the command's own parallelism never hits it.
    let engine = Engine::start(Arc::new(pipeline), workers, workers * 4)?;
    Ok(Service::new(engine, open_store(db).await?, config).await?)
}

/// The image files of a folder (not recursive), sorted by name.
pub fn image_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    const EXTENSIONS: [&str; 9] = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff", "jfif"];
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let hidden = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        let image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if path.is_file() && image && !hidden {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The image files of a folder and every folder below it, sorted by path.
pub fn image_files_below(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            }
        }
        files.extend(image_files(&d)?);
    }
    files.sort();
    Ok(files)
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
