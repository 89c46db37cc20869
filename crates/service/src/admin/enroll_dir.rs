//! `visage enroll-dir DIR`: one folder per person (the folder name, with `_`
//! as spaces, is the person's name), any number of photos in each. Photos
//! already enrolled for that person (same SHA-256) are skipped, so an
//! interrupted run is resumed by running it again. Photos that cannot be
//! enrolled (no face, several faces, too small or blurry, not an image) are
//! skipped and reported with their reason; anything else stops the run.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use serde::Serialize;
use sha2::Digest as _;

use super::{ACTOR, progress};
use crate::domain::FaceChoice;
use crate::service::error::Error;
use crate::service::{EnrollTarget, Service};
use crate::vision::files::image_files;

/// A photo that was not enrolled, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub path: PathBuf,
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub persons_created: usize,
    pub persons_existing: usize,
    pub photos: usize,
    pub enrolled: usize,
    pub already_enrolled: usize,
    /// Skipped photos by reason code.
    pub skipped_by_reason: BTreeMap<&'static str, usize>,
    pub skipped: Vec<Skipped>,
}

enum Outcome {
    Enrolled { person_id: String, created: bool },
    AlreadyEnrolled,
    Skipped(Skipped),
}

/// The person a folder stands for.
pub fn person_name(folder: &Path) -> Option<String> {
    let name = folder.file_name()?.to_str()?.replace('_', " ");
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::domain::valid_name(&name).ok().map(str::to_string)
}

/// Whether an error means "this photo cannot be enrolled" (skip it) rather
/// than "something is wrong" (stop).
fn skippable(e: &Error) -> bool {
    matches!(
        e,
        Error::NoFace
            | Error::MultipleFaces(_)
            | Error::FaceTooSmall { .. }
            | Error::FaceTooBlurry { .. }
            | Error::InvalidImage(_)
            | Error::ImageTooLarge(_)
            | Error::MissingImage(_)
    )
}

async fn enroll_photo(
    service: &Service,
    path: &Path,
    person: Option<&str>,
    name: &str,
    folder: &str,
    choice: FaceChoice,
) -> Result<Outcome> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    if let Some(id) = person
        && service.store().has_face_from(id, &sha).await?
    {
        return Ok(Outcome::AlreadyEnrolled);
    }
    let metadata = serde_json::json!({ "source": "enroll-dir", "folder": folder });
    let target = match person {
        Some(id) => EnrollTarget::Existing(id),
        None => EnrollTarget::New { name, metadata: Some(&metadata) },
    };
    match service.enroll(target, bytes.into(), choice, ACTOR).await {
        Ok(e) => Ok(Outcome::Enrolled { person_id: e.person.id, created: e.created_person }),
        Err(e) if skippable(&e) => {
            Ok(Outcome::Skipped(Skipped { path: path.to_path_buf(), code: e.code().name(), message: e.to_string() }))
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("enrolling {}", path.display()))),
    }
}

/// Enrolls every person folder of `dir`, `concurrency` photos at a time.
pub async fn run(service: &Service, dir: &Path, choice: FaceChoice, concurrency: usize) -> Result<Summary> {
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let hidden = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        if path.is_dir() && !hidden {
            folders.push(path);
        }
    }
    folders.sort();
    let mut work = Vec::new();
    for folder in folders {
        let photos = image_files(&folder)?;
        work.push((folder, photos));
    }
    let mut summary = Summary { photos: work.iter().map(|(_, p)| p.len()).sum(), ..Summary::default() };
    let bar = progress(summary.photos as u64, "photos");
    for (folder, photos) in work {
        let folder_name = folder.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let Some(name) = person_name(&folder) else {
            for path in photos {
                bar.inc(1);
                let message = format!("the folder name {folder_name:?} is not a valid person name");
                summary.skipped.push(Skipped { path, code: "invalid_parameter", message });
            }
            continue;
        };
        bar.set_message(name.clone());
        let mut person = service.store().find_person_by_name(&name).await?.map(|p| p.id);
        if person.is_some() {
            summary.persons_existing += 1;
        }
        let mut rest = photos.into_iter();
        // Until the person exists, one photo at a time (the first success creates them).
        while person.is_none() {
            let Some(path) = rest.next() else { break };
            let outcome = enroll_photo(service, &path, None, &name, &folder_name, choice).await?;
            bar.inc(1);
            if let Outcome::Enrolled { person_id, created } = &outcome {
                person = Some(person_id.clone());
                summary.persons_created += usize::from(*created);
            }
            tally(&mut summary, outcome);
        }
        let Some(person) = person else { continue };
        let mut outcomes = futures_util::stream::iter(rest)
            .map(|path| {
                let (person, name, folder_name) = (&person, &name, &folder_name);
                async move { enroll_photo(service, &path, Some(person), name, folder_name, choice).await }
            })
            .buffer_unordered(concurrency.max(1));
        while let Some(outcome) = outcomes.next().await {
            bar.inc(1);
            tally(&mut summary, outcome?);
        }
    }
    bar.finish_and_clear();
    for s in &summary.skipped {
        *summary.skipped_by_reason.entry(s.code).or_default() += 1;
    }
    Ok(summary)
}

fn tally(summary: &mut Summary, outcome: Outcome) {
    match outcome {
        Outcome::Enrolled { .. } => summary.enrolled += 1,
        Outcome::AlreadyEnrolled => summary.already_enrolled += 1,
        Outcome::Skipped(s) => summary.skipped.push(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_become_person_names() {
        assert_eq!(person_name(Path::new("/x/George_W_Bush")).as_deref(), Some("George W Bush"));
        assert_eq!(person_name(Path::new("/x/Ada Lovelace")).as_deref(), Some("Ada Lovelace"));
        assert_eq!(person_name(Path::new("/x/__")), None);
    }
}
