//! `models/manifest.toml`: which model files exist, their checksums, and how
//! each expects its input. The Python fetch step reads the same file.
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Manifest {
    /// Id of the default detector.
    pub detector: String,
    /// Id of the default embedder.
    pub embedder: String,
    pub models: Vec<ModelEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Detector,
    Embedder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

/// How a model wants its image input: `(pixel - mean) / std` per channel,
/// in the given channel order, NCHW.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct InputSpec {
    #[serde(default)]
    pub width: Option<usize>,
    #[serde(default)]
    pub height: Option<usize>,
    pub channel_order: ChannelOrder,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Source {
    pub package: String,
    pub version: String,
    pub sha256: String,
    pub member: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ModelEntry {
    pub id: String,
    pub kind: ModelKind,
    #[serde(default)]
    pub architecture: Option<String>,
    pub file: String,
    pub sha256: String,
    pub licence: String,
    #[serde(default)]
    pub description: Option<String>,
    pub input: InputSpec,
    /// Embedding length (embedders).
    #[serde(default)]
    pub output_dim: Option<usize>,
    /// Default cosine threshold for 1:1 decisions (embedders).
    #[serde(default)]
    pub threshold: Option<f32>,
    #[serde(default)]
    pub source: Option<Source>,
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Self> {
        let m: Manifest = toml::from_str(text).context("invalid model manifest")?;
        m.validate()?;
        Ok(m)
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("manifest.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the model manifest {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn get(&self, id: &str, kind: ModelKind) -> Result<&ModelEntry> {
        let Some(e) = self.models.iter().find(|m| m.id == id) else {
            bail!("the manifest has no model with id {id:?}")
        };
        ensure!(e.kind == kind, "model {id:?} is a {:?}, not a {kind:?}", e.kind);
        Ok(e)
    }

    pub fn default_detector(&self) -> Result<&ModelEntry> {
        self.get(&self.detector, ModelKind::Detector)
    }

    pub fn default_embedder(&self) -> Result<&ModelEntry> {
        self.get(&self.embedder, ModelKind::Embedder)
    }

    fn validate(&self) -> Result<()> {
        for m in &self.models {
            ensure!(
                m.sha256.len() == 64 && m.sha256.chars().all(|c| c.is_ascii_hexdigit()),
                "model {:?}: sha256 must be 64 hex digits",
                m.id
            );
            ensure!(m.input.std.iter().all(|s| *s != 0.0), "model {:?}: std must not be 0", m.id);
            if m.kind == ModelKind::Embedder {
                ensure!(
                    m.input.width.is_some() && m.input.height.is_some(),
                    "embedder {:?} needs input.width and input.height",
                    m.id
                );
                ensure!(m.output_dim.is_some(), "embedder {:?} needs output_dim", m.id);
            }
        }
        self.default_detector()?;
        self.default_embedder()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_manifest_parses_and_names_its_defaults() {
        let m = Manifest::parse(include_str!("../../models/manifest.toml")).unwrap();
        let e = m.default_embedder().unwrap();
        assert_eq!(e.output_dim, Some(128));
        assert_eq!(e.input.channel_order, ChannelOrder::Rgb);
        assert_eq!(e.threshold, Some(0.363));
        assert_eq!(m.default_detector().unwrap().input.channel_order, ChannelOrder::Bgr);
    }

    #[test]
    fn a_manifest_with_a_bad_default_is_refused() {
        let text = include_str!("../../models/manifest.toml")
            .replace("embedder = \"sface-2021dec-int8bq\"", "embedder = \"nope\"");
        assert!(Manifest::parse(&text).is_err());
    }
}
