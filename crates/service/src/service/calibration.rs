//! The thresholds in force and the error rates they carry. A threshold is
//! set outright, taken from the embedder's defaults, or derived from a
//! target rate (`--verify-far`, `--identify-fpir`) on what is known of the
//! embedder's scores: the reference distribution shipped with it and the
//! gallery's own pairs (see [`crate::calibration::Estimate`]). The gallery's
//! pairs are sampled at start-up, on reload, after the gallery has grown or
//! shrunk by a tenth, and whenever the calibration report is asked for.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;
use serde::Serialize;

use super::Service;
use crate::calibration::{EmbedderPolicy, Estimate, Pairs, Reference, score_pairs};
use crate::domain::Threshold;
use crate::gallery::Gallery;
use crate::service::error::{Error, Result};

/// Pairs of each kind sampled from a large gallery.
pub const GALLERY_PAIRS: usize = 1_000_000;
/// The sample's seed: the same gallery gives the same figures.
const SEED: u64 = 0x5eed_ca1b;

/// How a threshold in force is set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdRule {
    /// Set explicitly (`--verify-threshold`, `--identify-threshold`).
    Fixed(f32),
    /// The embedder's default in `models/manifest.toml`.
    EmbedderDefault(f32),
    /// The lowest threshold whose expected false-accept rate is at most this.
    Far(f64),
    /// The lowest threshold whose expected false-positive identification
    /// rate, for a gallery of the current size, is at most this.
    Fpir(f64),
}

impl ThresholdRule {
    /// Where a threshold under this rule comes from, in words.
    pub fn source(&self) -> &'static str {
        match self {
            Self::Fixed(_) => "set explicitly (--verify-threshold / --identify-threshold)",
            Self::EmbedderDefault(_) => {
                "the embedder's default in models/manifest.toml (chosen on LFW View 1 DevTrain; README: Thresholds)"
            }
            Self::Far(_) => {
                "the lowest threshold whose expected false-accept rate meets --verify-far, from the embedder's reference scores and the gallery's own pairs"
            }
            Self::Fpir(_) => {
                "the lowest threshold whose expected false-positive identification rate on a gallery of this many faces meets --identify-fpir, from the embedder's reference scores and the gallery's own pairs"
            }
        }
    }

    /// Whether the rule needs score distributions.
    pub fn is_target(&self) -> bool {
        matches!(self, Self::Far(_) | Self::Fpir(_))
    }

    /// The threshold: rounded up to 1e-4, so a target is still met.
    pub fn resolve(&self, estimate: &Estimate, faces: usize) -> f32 {
        let derived = match *self {
            Self::Fixed(t) | Self::EmbedderDefault(t) => return t,
            Self::Far(far) => estimate.threshold_for_far(far),
            Self::Fpir(fpir) => estimate.threshold_for_fpir(fpir, faces),
        };
        // Without scores there is nothing to derive from: refuse every match.
        derived.map_or(1.0, |t| ((t * 1e4).ceil() / 1e4).min(1.0) as f32)
    }
}

/// What the gallery's own pairs were when last sampled.
#[derive(Debug, Clone, Serialize)]
pub struct GallerySample {
    pub faces: usize,
    pub persons: usize,
    /// Persons with two or more faces (they give the same-person pairs).
    pub persons_with_two_or_more_faces: usize,
    pub genuine_pairs: u64,
    pub impostor_pairs: u64,
    /// Whether the different-person pairs are a random sample.
    pub impostor_pairs_sampled: bool,
}

/// The estimate in force and what it was made from.
#[derive(Debug, Clone, Default)]
pub struct Calibrated {
    pub estimate: Estimate,
    pub gallery: Option<GallerySample>,
}

/// The calibration state a service shares with its background refreshes.
#[derive(Clone, Default)]
pub(super) struct Calibration {
    pub current: Arc<RwLock<Arc<Calibrated>>>,
    refreshing: Arc<AtomicBool>,
}

/// Samples the gallery's pairs (holding its read lock) into a new estimate.
fn sample(gallery: &RwLock<Gallery>, reference: Option<&Reference>) -> Calibrated {
    let g = gallery.read();
    let Pairs { genuine, impostor, persons_with_pairs, persons, impostor_sampled } =
        score_pairs(&*g, GALLERY_PAIRS, SEED);
    let faces = g.faces();
    drop(g);
    let info = GallerySample {
        faces,
        persons,
        persons_with_two_or_more_faces: persons_with_pairs,
        genuine_pairs: genuine.total(),
        impostor_pairs: impostor.total(),
        impostor_pairs_sampled: impostor_sampled,
    };
    Calibrated {
        estimate: Estimate {
            reference: reference.map(Reference::scores),
            gallery: Some(crate::calibration::ScoreModel::new(genuine, impostor)),
        },
        gallery: Some(info),
    }
}

impl Service {
    /// The estimate in force.
    pub fn calibrated(&self) -> Arc<Calibrated> {
        self.calibration.current.read().clone()
    }

    /// The 1:1 threshold in force.
    pub fn verify_threshold(&self) -> f32 {
        self.config.verify.resolve(&self.calibrated().estimate, self.gallery_read().faces())
    }

    /// The 1:N threshold in force for a gallery of `faces`.
    pub fn identify_threshold(&self, faces: usize) -> f32 {
        self.config.identify.resolve(&self.calibrated().estimate, faces)
    }

    /// How far the best of two persons above the 1:N threshold must lead
    /// the second to be named (0: never ambiguous).
    pub fn identify_margin(&self) -> f32 {
        self.config
            .identify_margin
            .or_else(|| self.config.reference.as_ref().and_then(|r| r.ambiguity_margin))
            .unwrap_or(0.0)
    }

    /// Samples the gallery's pairs again now, on a blocking thread.
    pub async fn recalibrate(&self) -> Result<Arc<Calibrated>> {
        let (gallery, reference) = (self.gallery.clone(), self.config.reference.clone());
        let fresh = tokio::task::spawn_blocking(move || sample(&gallery, reference.as_deref()))
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("calibration failed: {e}")))?;
        let fresh = Arc::new(fresh);
        *self.calibration.current.write() = fresh.clone();
        Ok(fresh)
    }

    /// After a change: samples again in the background once the gallery has
    /// grown or shrunk by a tenth (and by at least 100 faces) since the last
    /// sample; one refresh at a time.
    pub(super) fn recalibrate_when_changed(&self) {
        let faces = self.gallery_read().faces();
        let last = self.calibrated().gallery.as_ref().map_or(0, |g| g.faces);
        if faces.abs_diff(last) < (last / 10).max(100) {
            return;
        }
        let flag = self.calibration.refreshing.clone();
        if flag.swap(true, Ordering::AcqRel) {
            return;
        }
        let (gallery, reference) = (self.gallery.clone(), self.config.reference.clone());
        let current = self.calibration.current.clone();
        let span = tracing::info_span!(parent: None, "recalibrate");
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let fresh = sample(&gallery, reference.as_deref());
            tracing::info!(faces = fresh.gallery.as_ref().map_or(0, |g| g.faces), "gallery pairs sampled again");
            *current.write() = Arc::new(fresh);
            flag.store(false, Ordering::Release);
        });
    }
}

/// What the operator asked of the two thresholds (`visage serve`'s flags).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ThresholdChoice {
    pub verify: Option<Threshold>,
    pub identify: Option<Threshold>,
    pub verify_far: Option<f64>,
    pub identify_fpir: Option<f64>,
    pub identify_margin: Option<f32>,
}

impl ThresholdChoice {
    /// `config` with the rules asked for; without them, the embedder's
    /// defaults (cosines of different embedders live on different scales),
    /// and its reference scores from `models_dir`. A target needs reference
    /// scores: refused without them.
    pub fn apply(
        &self,
        mut config: super::ServiceConfig,
        pipeline: &crate::vision::Pipeline,
        models_dir: &std::path::Path,
    ) -> anyhow::Result<super::ServiceConfig> {
        let id = pipeline.embedder.id();
        let policy = EmbedderPolicy::of_model(&pipeline.manifest, id, models_dir)?;
        config.reference = policy.reference.clone();
        config.verify = match (self.verify, self.verify_far) {
            (Some(t), _) => ThresholdRule::Fixed(t.get()),
            (None, Some(far)) => ThresholdRule::Far(far),
            (None, None) => ThresholdRule::EmbedderDefault(policy.verify),
        };
        config.identify = match (self.identify, self.identify_fpir) {
            (Some(t), _) => ThresholdRule::Fixed(t.get()),
            (None, Some(fpir)) => ThresholdRule::Fpir(fpir),
            (None, None) => ThresholdRule::EmbedderDefault(policy.identify),
        };
        config.identify_margin = self.identify_margin;
        config.embedders = EmbedderPolicy::all(models_dir)?;
        if config.reference.is_none() && (config.verify.is_target() || config.identify.is_target()) {
            anyhow::bail!(
                "--verify-far and --identify-fpir need the embedder's reference scores ({}), which do not exist: \
                 set --verify-threshold / --identify-threshold, or make them with `visage eval reference`",
                Reference::path(models_dir, &id.name).display()
            );
        }
        Ok(config)
    }
}
