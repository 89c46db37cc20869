//! `visage reembed --to EMBEDDER`: embeds the stored faces with another
//! embedder, keeping the new embeddings beside the old (a service of either
//! model finds every face meanwhile): from their kept crops
//! (`--keep-crops`), else from their photos. Photos are never stored, so
//! they are found again by the SHA-256 recorded at enrollment in the folder
//! given with `--photos`; faces with neither are listed, by person, as
//! needing new photos. Resumable: faces that have the model are skipped.
//! Then what identify would answer differently on the gallery's own faces,
//! and, when asked, the switch.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::Digest as _;

use super::{ACTOR, progress};
use crate::service::error::Error;
use crate::service::{ModelChanges, Service};
use crate::store::Switched;
use crate::vision::files::image_files_below;

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
    /// Faces without an embedding of `model` before the run.
    pub faces_to_reembed: usize,
    pub reembedded: usize,
    /// Of those, from their kept crops (no photo needed).
    pub from_crops: usize,
    /// Faces whose photo was found but shows no matching face any more.
    pub failed: usize,
    pub needs_new_photos: Vec<NeedsPhotos>,
    /// What identify answers differently with `model` than with the model
    /// most faces own (when that is another).
    pub changes: Option<ModelChanges>,
    /// What `--switch` did.
    pub switched: Option<Switched>,
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

/// Embeds the faces that lack this service's model, reports the changes,
/// and switches the faces' own model to it when `switch` says so.
pub async fn run(service: &Service, photos: Option<&Path>, switch: Option<bool>) -> Result<Summary> {
    let mut summary = embed(service, photos).await?;
    summary.changes = match service.model_changes(None, None).await {
        Ok(c) => Some(c),
        // Every face's own model is this one already: nothing to compare.
        Err(Error::ModelNotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(force) = switch {
        summary.switched = Some(match service.switch_model(service.model(), force, ACTOR).await {
            Ok(done) => done,
            // Refused: the faces lacking the model are listed as needing photos.
            Err(Error::ModelIncomplete { lacking, .. }) => Switched { switched: 0, lacking, done: false },
            Err(e) => return Err(e.into()),
        });
    }
    Ok(summary)
}

async fn embed(service: &Service, photos: Option<&Path>) -> Result<Summary> {
    let model = service.model().to_string();
    let faces = service.store().faces_lacking(&model).await?;
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
            *missing.entry(face.person_id.clone().unwrap_or_default()).or_default() += 1;
            continue;
        };
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        match service.reembed(face, bytes.into(), ACTOR).await {
            Ok(_) => summary.reembedded += 1,
            Err(e) => {
                tracing::warn!(face = %face.id, path = %path.display(), error = %e, "cannot re-embed");
                summary.failed += 1;
                *missing.entry(face.person_id.clone().unwrap_or_default()).or_default() += 1;
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
