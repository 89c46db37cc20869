//! `visage faces import DIR`: every photo below DIR, each face kept with the
//! photo's path relative to DIR as its external id. With `--unassigned` the
//! faces are kept without a person (each joins or starts a cluster: the
//! photo-library flow); otherwise the first folder of the path names the
//! person (created when new), as `enroll-dir` does. A photo whose external
//! id is already stored is skipped, so an interrupted run is resumed by
//! running it again. Photos that cannot be kept are reported with their reason.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use serde::Serialize;

use super::enroll_dir::{Skipped, person_name};
use super::{ACTOR, progress};
use crate::domain::FaceChoice;
use crate::service::error::Error;
use crate::service::{KeepFor, Service};
use crate::vision::files::image_files_below;

/// Longest external id (the API's limit), in characters.
const MAX_EXTERNAL_ID: usize = 200;

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub photos: usize,
    /// Photos with at least one face kept.
    pub imported: usize,
    pub faces_kept: usize,
    /// Faces below the enrollment gates (nothing kept of them).
    pub faces_refused: usize,
    pub already_imported: usize,
    pub skipped_by_reason: BTreeMap<&'static str, usize>,
    pub skipped: Vec<Skipped>,
}

enum Outcome {
    Imported { kept: usize, refused: usize },
    AlreadyImported,
    Skipped(Skipped),
}

/// How the faces of a folder's photos are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportAs {
    /// Without a person.
    Unassigned,
    /// For the person the first folder names.
    FolderPerson,
}

fn skip(path: &Path, code: &'static str, message: impl Into<String>) -> Outcome {
    Outcome::Skipped(Skipped { path: path.to_path_buf(), code, message: message.into() })
}

/// The person the first folder of `rel` names, found or created.
async fn folder_person(service: &Service, rel: &Path) -> Result<Option<String>> {
    let Some(first) = rel.components().next().filter(|_| rel.components().count() > 1) else { return Ok(None) };
    let Some(name) = person_name(Path::new(first.as_os_str())) else { return Ok(None) };
    if let Some(p) = service.store().find_person_by_name(&name).await? {
        return Ok(Some(p.id));
    }
    let metadata = serde_json::json!({ "source": "faces import" });
    Ok(Some(service.create_person(&name, Some(&metadata), ACTOR).await?.id))
}

async fn import_photo(
    service: &Service,
    dir: &Path,
    path: &Path,
    as_: ImportAs,
    choice: FaceChoice,
) -> Result<Outcome> {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    let Some(external) = rel.to_str().map(str::to_string) else {
        return Ok(skip(path, "invalid_parameter", "the path is not UTF-8"));
    };
    if external.chars().count() > MAX_EXTERNAL_ID {
        return Ok(skip(path, "invalid_parameter", format!("the path is longer than {MAX_EXTERNAL_ID} characters")));
    }
    if service.store().has_external_id(&external).await? {
        return Ok(Outcome::AlreadyImported);
    }
    let person = match as_ {
        ImportAs::Unassigned => None,
        ImportAs::FolderPerson => match folder_person(service, rel).await? {
            Some(p) => Some(p),
            None => return Ok(skip(path, "invalid_parameter", "not in a folder named after a valid person name")),
        },
    };
    let to = person.as_deref().map_or(KeepFor::Nobody, KeepFor::Person);
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    match service.keep_faces(bytes.into(), choice, Some(&external), to, ACTOR).await {
        Ok(k) if k.faces.is_empty() => {
            let reasons: Vec<&str> = k.refused.iter().map(|r| r.reason.name()).collect();
            Ok(skip(path, k.refused.first().map_or("no_face", |r| r.reason.name()), reasons.join(", ")))
        }
        Ok(k) => Ok(Outcome::Imported { kept: k.faces.len(), refused: k.refused.len() }),
        Err(e) if skippable(&e) => Ok(skip(path, e.code().name(), e.to_string())),
        Err(e) => Err(anyhow::Error::new(e).context(format!("importing {}", path.display()))),
    }
}

fn skippable(e: &Error) -> bool {
    matches!(
        e,
        Error::NoFace
            | Error::MultipleFaces(_)
            | Error::InvalidImage(_)
            | Error::ImageTooLarge(_)
            | Error::MissingImage(_)
    )
}

/// Imports every photo below `dir`, `concurrency` at a time (one at a time
/// for persons from folders, so that a new person is created once).
pub async fn run(
    service: &Service,
    dir: &Path,
    as_: ImportAs,
    choice: FaceChoice,
    concurrency: usize,
) -> Result<Summary> {
    let photos: Vec<PathBuf> = image_files_below(dir)?;
    let mut summary = Summary { photos: photos.len(), ..Summary::default() };
    let bar = progress(summary.photos as u64, "photos");
    let at_once = if as_ == ImportAs::Unassigned { concurrency.max(1) } else { 1 };
    let mut outcomes = futures_util::stream::iter(photos)
        .map(|path| async move { import_photo(service, dir, &path, as_, choice).await })
        .buffered(at_once);
    while let Some(outcome) = outcomes.next().await {
        bar.inc(1);
        match outcome? {
            Outcome::Imported { kept, refused } => {
                summary.imported += 1;
                summary.faces_kept += kept;
                summary.faces_refused += refused;
            }
            Outcome::AlreadyImported => summary.already_imported += 1,
            Outcome::Skipped(s) => summary.skipped.push(s),
        }
    }
    bar.finish_and_clear();
    for s in &summary.skipped {
        *summary.skipped_by_reason.entry(s.code).or_default() += 1;
    }
    Ok(summary)
}
