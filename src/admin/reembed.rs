//! `visage reembed`: after a new embedder is configured, embed the stored
//! faces again: from their kept crops (`--keep-crops`), else from their
//! photos. Photos are never stored, so they are found again by the SHA-256
//! recorded at enrollment in the folder given with `--photos`; faces with
//! neither are listed, by person, as needing new photos.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::Digest as _;

use super::{ACTOR, image_files_below, progress};
use crate::service::Service;

#[derive(Debug, Serialize)]
pub struct NeedsPhotos {
    pub person_id: String,
    pub name: String,
    /// Faces of this person still embedded by another model.
    pub faces: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub model: String,
    /// Faces embedded by another model before the run.
    pub faces_to_reembed: usize,
    pub reembedded: usize,
    /// Of those, from their kept crops (no photo needed).
    pub from_crops: usize,
    /// Faces whose photo was found but shows no matching face any more.
    pub failed: usize,
    pub needs_new_photos: Vec<NeedsPhotos>,
}

/// Every image under `dir` (recursively) by its SHA-256.
fn photos_by_hash(dir: &Path) -> Result<HashMap<String, PathBuf>> {
    let mut out = HashMap::new();
    for path in image_files_below(dir)? {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        out.insert(hex::encode(sha2::Sha256::digest(&bytes)), path);
    }
    Ok(out)
}

pub async fn run(service: &Service, photos: Option<&Path>) -> Result<Summary> {
    let model = service.model().to_string();
    let faces = service.store().faces_not_of_model(&model).await?;
    let mut summary = Summary { model, faces_to_reembed: faces.len(), ..Summary::default() };
    let index = match photos {
        Some(dir) if !faces.is_empty() => photos_by_hash(dir)?,
        _ => HashMap::new(),
    };
    let bar = progress(faces.len() as u64, "faces");
    let mut missing: BTreeMap<String, usize> = BTreeMap::new();
    for (face, source) in &faces {
        bar.inc(1);
        if let Some(crop) = service.store().face_crop(&face.id).await? {
            match service.reembed_from_crop(face, &crop, ACTOR).await {
                Ok(_) => {
                    summary.reembedded += 1;
                    summary.from_crops += 1;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(face = %face.id, error = %e, "cannot re-embed from the kept crop; trying the photo")
                }
            }
        }
        let Some(path) = source.as_ref().and_then(|s| index.get(s)) else {
            *missing.entry(face.person_id.clone()).or_default() += 1;
            continue;
        };
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        match service.reembed(face, bytes.into(), ACTOR).await {
            Ok(_) => summary.reembedded += 1,
            Err(e) => {
                tracing::warn!(face = %face.id, path = %path.display(), error = %e, "cannot re-embed");
                summary.failed += 1;
                *missing.entry(face.person_id.clone()).or_default() += 1;
            }
        }
    }
    bar.finish_and_clear();
    let ids: Vec<&str> = missing.keys().map(String::as_str).collect();
    let names = service.store().person_names(&ids).await?;
    summary.needs_new_photos = missing
        .into_iter()
        .map(|(person_id, faces)| NeedsPhotos {
            name: names.get(&person_id).cloned().unwrap_or_default(),
            person_id,
            faces,
        })
        .collect();
    Ok(summary)
}
