//! One embedder's decision policy, read once: the thresholds its manifest
//! entry states (or the defaults an embedder without them gets), the margin
//! by which identify's best person must lead the second, and the reference
//! scores shipped in `models/reference/`. Everything that decides with an
//! embedder's similarities (the service, the measurements, the one-photo
//! commands) takes these values from here.
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use visage_model::{EmbedderPlan, Manifest, ModelId, embedder_id};

use super::Reference;

/// 1:1 default of an embedder without one (SFace's published point).
pub const DEFAULT_VERIFY_THRESHOLD: f32 = 0.363;
/// 1:N default of an embedder without one (SFace's, README: Thresholds).
pub const DEFAULT_IDENTIFY_THRESHOLD: f32 = 0.48;

#[derive(Debug, Clone, PartialEq)]
pub struct EmbedderPolicy {
    /// The id its embeddings carry (`name@sha256:...`).
    pub model: String,
    /// What `--embedder` calls it (its name, and its alias).
    pub names: Vec<String>,
    /// The 1:1 threshold (verify, compare).
    pub verify: f32,
    /// The 1:N threshold (identify).
    pub identify: f32,
    /// How far the best of two persons above the 1:N threshold must lead
    /// the second to be named (0 without reference scores: never ambiguous).
    pub margin: f32,
    /// Its reference scores, when it ships them.
    pub reference: Option<Arc<Reference>>,
}

impl EmbedderPolicy {
    /// The policy of one embedder of the manifest; an unreadable reference
    /// file is an error.
    pub fn of(plan: &EmbedderPlan, models_dir: &Path) -> Result<Self> {
        let model = embedder_id(plan).to_string();
        let reference = Reference::load(models_dir, &plan.name, &model)?.map(Arc::new);
        Ok(Self::with_reference(plan, model, reference))
    }

    fn with_reference(plan: &EmbedderPlan, model: String, reference: Option<Arc<Reference>>) -> Self {
        let mut names = vec![plan.name.clone()];
        if let [(entry, _)] = plan.members.as_slice() {
            names.extend(entry.alias.clone());
        }
        Self {
            verify: plan.threshold.unwrap_or(DEFAULT_VERIFY_THRESHOLD),
            identify: plan.identify_threshold.unwrap_or(DEFAULT_IDENTIFY_THRESHOLD),
            margin: reference.as_ref().and_then(|r| r.ambiguity_margin).unwrap_or(0.0),
            reference,
            model,
            names,
        }
    }

    /// The policy of the embedder `id` from `manifest` (a loaded pipeline's).
    pub fn of_model(manifest: &Manifest, id: &ModelId, models_dir: &Path) -> Result<Self> {
        let plans = manifest.embedders();
        let plan = plans
            .iter()
            .find(|p| embedder_id(p) == *id)
            .with_context(|| format!("{id} is not an embedder of the manifest"))?;
        Self::of(plan, models_dir)
    }

    /// Every embedder of the manifest in `models_dir` (no model file is
    /// read); an embedder whose reference cannot be read goes without it.
    pub fn all(models_dir: &Path) -> Result<Vec<Self>> {
        let manifest = Manifest::load(models_dir)?;
        let plans = manifest.embedders();
        let policies = plans.iter().map(|plan| {
            let model = embedder_id(plan).to_string();
            let reference = Reference::load(models_dir, &plan.name, &model).ok().flatten().map(Arc::new);
            Self::with_reference(plan, model, reference)
        });
        Ok(policies.collect())
    }

    /// Whether `name` is this embedder's model id, name or alias.
    pub fn is_called(&self, name: &str) -> bool {
        self.model == name || self.names.iter().any(|n| n == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
    }

    #[test]
    fn each_shipped_embedder_has_its_manifest_thresholds_and_reference_margin() {
        let all = EmbedderPolicy::all(&shipped()).unwrap();
        let fused = all.iter().find(|p| p.is_called("sface+dlib")).unwrap();
        assert_eq!((fused.verify, fused.identify), (0.674, 0.735));
        assert!(fused.reference.is_some() && fused.margin > 0.0, "{fused:?}");
        assert_eq!(fused.margin, fused.reference.as_ref().unwrap().ambiguity_margin.unwrap());
        let sface = all.iter().find(|p| p.is_called("sface")).unwrap();
        assert_eq!((sface.verify, sface.identify), (0.363, 0.48));
        assert!(sface.model.starts_with("sface-2021dec-int8bq@sha256:"), "{}", sface.model);
    }

    #[test]
    fn an_embedder_without_thresholds_or_reference_gets_the_defaults_not_zero() {
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(shipped().join("manifest.toml")).unwrap();
        let bare: String = text
            .lines()
            .filter(|l| !l.starts_with("threshold") && !l.starts_with("identify_threshold"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(dir.path().join("manifest.toml"), bare).unwrap();
        let all = EmbedderPolicy::all(dir.path()).unwrap();
        assert_eq!(all.len(), 3, "{all:?}");
        for p in all {
            assert_eq!((p.verify, p.identify, p.margin), (DEFAULT_VERIFY_THRESHOLD, DEFAULT_IDENTIFY_THRESHOLD, 0.0));
            assert!(p.reference.is_none());
        }
    }
}
