//! `models/manifest.toml`: which model files exist, their checksums, and how
//! each expects its input. The Python fetch step reads the same file.
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Manifest {
    /// Id of the default detector.
    pub detector: String,
    /// The default embedder: a model's id or alias, or a fusion's id.
    pub embedder: String,
    pub models: Vec<ModelEntry>,
    /// Embedders made of several models (see [`Fusion`]).
    #[serde(default)]
    pub fusions: Vec<Fusion>,
}

/// How a model file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelFormat {
    #[default]
    Onnx,
    /// dlib's own serialization of its face-recognition ResNet, built into
    /// an ONNX graph when loaded.
    Dlib,
}

/// Which face template an embedder's crop is aligned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Alignment {
    /// The 5-point ArcFace template (112x112, scaled to the input size).
    #[default]
    Arcface,
    /// dlib's face chip (`get_face_chip_details(shape, size, 0.25)`): its mean
    /// face shape with 25 % padding.
    Dlib,
}

/// An embedder that concatenates the unit embeddings of several models,
/// each scaled by the square root of its weight: the cosine of two such
/// vectors is the weighted sum of the members' cosines, so galleries, search
/// and thresholds work unchanged on one vector per face.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Fusion {
    pub id: String,
    pub members: Vec<FusionMember>,
    /// Default cosine threshold for 1:1 decisions.
    #[serde(default)]
    pub threshold: Option<f32>,
    /// Default cosine threshold for 1:N identification.
    #[serde(default)]
    pub identify_threshold: Option<f32>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub evaluation: Option<Evaluation>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FusionMember {
    /// A model's id or alias.
    pub model: String,
    /// Share of the similarity; the weights of a fusion sum to 1.
    pub weight: f32,
}

/// An embedder's accuracy and cost as measured for the manifest (the README
/// gives the commands): LFW View 1 (`pairsDevTest.txt`; thresholds and weights
/// were chosen on `pairsDevTrain.txt`) through visage's own pipeline, and the
/// embedding cost per face on one core with tract.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Evaluation {
    /// 10-fold accuracy on DevTest.
    pub view1_devtest_10fold: f64,
    /// Accuracy on DevTest at the default 1:1 threshold.
    pub view1_devtest_at_threshold: f64,
    /// True-accept rate on DevTest at a false-accept rate of 0.1 %.
    pub view1_devtest_tar_at_far_0_001: f64,
    /// Milliseconds per face (alignment and embedding, flip included when on).
    pub ms_per_face: f64,
    /// The CPU the cost was measured on.
    pub cpu: String,
}

/// An embedder resolved from the manifest: its models with their weights.
#[derive(Debug, Clone)]
pub struct EmbedderPlan<'a> {
    /// The model id, or the fusion id.
    pub name: String,
    pub members: Vec<(&'a ModelEntry, f32)>,
    pub threshold: Option<f32>,
    pub identify_threshold: Option<f32>,
    pub evaluation: Option<&'a Evaluation>,
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
    /// A short name for `--embedder` (e.g. `sface`).
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub format: ModelFormat,
    /// Embedders: the face template of the crop.
    #[serde(default)]
    pub alignment: Alignment,
    pub input: InputSpec,
    /// Embedding length (embedders).
    #[serde(default)]
    pub output_dim: Option<usize>,
    /// Default cosine threshold for 1:1 decisions (embedders).
    #[serde(default)]
    pub threshold: Option<f32>,
    /// Default cosine threshold for 1:N identification (embedders).
    #[serde(default)]
    pub identify_threshold: Option<f32>,
    /// Embedders: measured accuracy and cost.
    #[serde(default)]
    pub evaluation: Option<Evaluation>,
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

    /// The default embedder.
    pub fn default_embedder(&self) -> Result<EmbedderPlan<'_>> {
        self.embedder(&self.embedder)
    }

    /// Every embedder the manifest offers: each embedder model, then each fusion.
    pub fn embedders(&self) -> Vec<EmbedderPlan<'_>> {
        let models = self.models.iter().filter(|m| m.kind == ModelKind::Embedder).map(|m| m.id.as_str());
        models.chain(self.fusions.iter().map(|f| f.id.as_str())).filter_map(|n| self.embedder(n).ok()).collect()
    }

    /// The embedder called `name`: a fusion's id, or a model's id or alias.
    pub fn embedder(&self, name: &str) -> Result<EmbedderPlan<'_>> {
        let model = |n: &str| -> Result<&ModelEntry> {
            let id = self.models.iter().find(|m| m.alias.as_deref() == Some(n)).map_or(n, |m| m.id.as_str());
            self.get(id, ModelKind::Embedder)
        };
        if let Some(f) = self.fusions.iter().find(|f| f.id == name) {
            let members = f.members.iter().map(|m| Ok((model(&m.model)?, m.weight))).collect::<Result<Vec<_>>>()?;
            return Ok(EmbedderPlan {
                name: f.id.clone(),
                members,
                threshold: f.threshold,
                identify_threshold: f.identify_threshold,
                evaluation: f.evaluation.as_ref(),
            });
        }
        let names: Vec<&str> = self
            .fusions
            .iter()
            .map(|f| f.id.as_str())
            .chain(self.models.iter().filter(|m| m.kind == ModelKind::Embedder).flat_map(|m| m.alias.as_deref()))
            .collect();
        let m = model(name).with_context(|| format!("no embedder {name:?}; the manifest has {names:?}"))?;
        Ok(EmbedderPlan {
            name: m.id.clone(),
            members: vec![(m, 1.0)],
            threshold: m.threshold,
            identify_threshold: m.identify_threshold,
            evaluation: m.evaluation.as_ref(),
        })
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
        for f in &self.fusions {
            let plan = self.embedder(&f.id)?;
            ensure!(plan.members.len() >= 2, "fusion {:?} needs at least two members", f.id);
            ensure!(
                plan.members.iter().all(|(_, w)| *w > 0.0)
                    && (plan.members.iter().map(|(_, w)| w).sum::<f32>() - 1.0).abs() < 1e-4,
                "fusion {:?}: weights must be positive and sum to 1",
                f.id
            );
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
        let m = Manifest::parse(include_str!("../../../models/manifest.toml")).unwrap();
        let e = m.embedder("sface").unwrap().members[0].0;
        assert_eq!(e.output_dim, Some(128));
        assert_eq!(e.input.channel_order, ChannelOrder::Rgb);
        assert_eq!(e.threshold, Some(0.363));
        assert_eq!(e.alignment, Alignment::Arcface);
        let d = m.embedder("dlib").unwrap().members[0].0;
        assert_eq!((d.format, d.alignment, d.input.width), (ModelFormat::Dlib, Alignment::Dlib, Some(150)));
        let f = m.embedder("sface+dlib").unwrap();
        assert_eq!(
            f.members.iter().map(|(e, _)| e.alias.as_deref()).collect::<Vec<_>>(),
            vec![Some("sface"), Some("dlib")]
        );
        assert!(m.embedder("arcface").is_err());
        assert_eq!(m.default_detector().unwrap().input.channel_order, ChannelOrder::Bgr);
    }

    #[test]
    fn a_manifest_with_a_bad_default_is_refused() {
        let text = include_str!("../../../models/manifest.toml")
            .lines()
            .map(|l| if l.starts_with("embedder = ") { "embedder = \"nope\"" } else { l })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(Manifest::parse(&text).is_err());
    }
}
