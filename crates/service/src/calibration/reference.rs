//! A reference score distribution shipped with an embedder
//! (`models/reference/<embedder>.json`): genuine and impostor cosines
//! measured on a public development set by `visage eval reference`, which
//! also writes the command that regenerates the file. Only the numbers are
//! stored, never the photos.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::{Histogram, ScoreModel};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// The embedder's model id (`name@sha256:...`): scores of another model mean nothing.
    pub model: String,
    /// Where the scores come from.
    pub source: String,
    /// The command that wrote this file.
    pub command: String,
    pub photos: usize,
    /// Photos where no face was found (left out).
    pub photos_without_face: usize,
    pub persons: usize,
    /// Same-person pairs (at most 10 photos a person).
    pub genuine: Histogram,
    /// Pairs of different persons.
    pub impostor: Histogram,
    /// How far the best of two persons above the 1:N threshold must lead
    /// the second for identify to name them (otherwise "ambiguous").
    #[serde(default)]
    pub ambiguity_margin: Option<f32>,
    /// How the margin was chosen.
    #[serde(default)]
    pub ambiguity_source: Option<String>,
}

impl Reference {
    /// Where the reference of the embedder named `name` lives.
    pub fn path(models_dir: &Path, name: &str) -> PathBuf {
        models_dir.join("reference").join(format!("{name}.json"))
    }

    /// The reference of embedder `name` when its file exists and was made by
    /// `model`; a file of another model is ignored with a warning.
    pub fn load(models_dir: &Path, name: &str, model: &str) -> Result<Option<Self>> {
        let path = Self::path(models_dir, name);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let r: Self = serde_json::from_str(&text).with_context(|| format!("{} is not a reference", path.display()))?;
        if r.model != model {
            tracing::warn!(file = %path.display(), file_model = %r.model, %model, "the reference scores are of another model: ignored");
            return Ok(None);
        }
        Ok(Some(r))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn scores(&self) -> ScoreModel {
        ScoreModel::new(self.genuine.clone(), self.impostor.clone())
    }
}
