//! The whole face pipeline: decode → detect → align → embed, with per-stage
//! timings. It knows nothing of HTTP; callers pick which faces they need.
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use image::RgbImage;
use serde::Serialize;

use super::align::align_face;
use super::decode::{DecodeError, DecodeLimits, decode_image};
use super::detect::{Detector, DetectorConfig};
use super::embed::{Embedder, Embedding};
use crate::domain::{Detection, FaceChoice, Quality};
use visage_model::{BackendConfig, LoadedModel, Manifest};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PipelineConfig {
    pub detector: DetectorConfig,
    pub decode: DecodeLimits,
    /// Test-time flip augmentation: embed the mirrored crop too and average.
    pub flip: bool,
    /// Which engine runs the models.
    pub backend: BackendConfig,
    /// The embedder (a model's id or alias, or a fusion's id); None: the manifest's default.
    pub embedder: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("inference failed: {0:#}")]
    Inference(#[from] anyhow::Error),
    /// `FaceChoice::Single` and the photo shows this many faces.
    #[error("the image shows {0} faces, where exactly one was asked for")]
    MultipleFaces(usize),
}

/// One face: where it is, how usable it is, and (when asked) its embedding.
#[derive(Debug, Clone, Serialize)]
pub struct Face {
    #[serde(flatten)]
    pub detection: Detection,
    pub quality: Quality,
    /// Not serialised with the face: only `/v1/embed` hands embeddings out.
    #[serde(skip)]
    pub embedding: Option<Embedding>,
}

/// A face with its embedding and model id, as `/v1/embed` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddedFace {
    #[serde(flatten)]
    pub face: Face,
    pub embedding: Vec<f32>,
    pub model: String,
}

impl From<Face> for EmbeddedFace {
    fn from(mut face: Face) -> Self {
        let e = face.embedding.take();
        Self {
            model: e.as_ref().map(|e| e.model.to_string()).unwrap_or_default(),
            embedding: e.map(|e| e.values).unwrap_or_default(),
            face,
        }
    }
}

/// Wall time spent in each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timings {
    pub decode: Duration,
    pub detect: Duration,
    pub align: Duration,
    pub embed: Duration,
}

pub struct Pipeline {
    pub detector: Detector,
    pub embedder: Embedder,
    pub config: PipelineConfig,
    /// The manifest the models came from (what else it offers, for `/v1/info`).
    pub manifest: Manifest,
}

impl Pipeline {
    /// Loads the manifest's default detector and the configured embedder from `models_dir`.
    pub fn load(models_dir: &Path, config: PipelineConfig) -> Result<Self> {
        let manifest = Manifest::load(models_dir)?;
        let detector = LoadedModel::load(models_dir, manifest.default_detector()?, &config.backend)?;
        let plan = match &config.embedder {
            Some(name) => manifest.embedder(name)?,
            None => manifest.default_embedder()?,
        };
        let models = plan
            .members
            .iter()
            .map(|(entry, w)| Ok((LoadedModel::load(models_dir, entry, &config.backend)?, *w)))
            .collect::<Result<Vec<_>>>()?;
        let embedder = Embedder::fused(visage_model::embedder_id(&plan), models)?;
        Ok(Self { detector: Detector::new(detector, config.detector)?, embedder, config, manifest })
    }

    pub fn decode(&self, bytes: &[u8]) -> Result<RgbImage, DecodeError> {
        decode_image(bytes, &self.config.decode)
    }

    /// Every face in the image, largest first.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>> {
        let mut dets = self.detector.detect(img)?;
        dets.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
        Ok(dets)
    }

    /// The aligned crops the embedder takes (one per model).
    pub fn align(&self, img: &RgbImage, det: &Detection) -> Result<Vec<RgbImage>> {
        self.embedder.crops(img, &det.landmarks).ok_or_else(|| anyhow::anyhow!("degenerate landmarks"))
    }

    pub fn embed(&self, crops: &[RgbImage]) -> Result<Embedding> {
        self.embedder.embed(crops, self.config.flip)
    }

    /// The face's quality, measured on the 112x112 ArcFace crop whatever the
    /// embedder (so the enrollment gates mean the same for every embedder);
    /// `crops` supplies it when the first model takes that crop.
    fn quality(&self, img: &RgbImage, det: &Detection, crops: &[RgbImage]) -> Result<Quality> {
        let arcface = self.embedder.members().first().is_some_and(|m| {
            m.input_size() == (112, 112) && m.alignment() == visage_model::manifest::Alignment::Arcface
        });
        let owned;
        let crop = match crops.first() {
            Some(c) if arcface => c,
            _ => {
                owned =
                    align_face(img, &det.landmarks, 112, 112).ok_or_else(|| anyhow::anyhow!("degenerate landmarks"))?;
                &owned
            }
        };
        Ok(super::quality::measure(det.bbox.width, det.bbox.height, &det.landmarks, crop))
    }

    /// Detects, then aligns, measures and (with `embed`) embeds the faces `choice` keeps.
    pub fn analyze(
        &self,
        img: &RgbImage,
        choice: FaceChoice,
        embed: bool,
        t: &mut Timings,
    ) -> Result<Vec<Face>, PipelineError> {
        let start = Instant::now();
        let dets = self.detect(img)?;
        t.detect += start.elapsed();
        self.analyze_detected(img, dets, choice, usize::MAX, embed, t)
    }

    /// [`Pipeline::analyze`] after detection: the faces `choice` keeps of
    /// `dets` (largest first), at most `limit` of them, described.
    pub fn analyze_detected(
        &self,
        img: &RgbImage,
        dets: Vec<Detection>,
        choice: FaceChoice,
        limit: usize,
        embed: bool,
        t: &mut Timings,
    ) -> Result<Vec<Face>, PipelineError> {
        let mut chosen = choose(dets, choice, img)?;
        chosen.truncate(limit);
        let mut faces = Vec::with_capacity(chosen.len());
        for det in chosen {
            faces.push(self.describe(img, det, embed, t)?);
        }
        Ok(faces)
    }

    /// Aligns one detected face, measures its quality and (with `embed`) embeds it.
    pub fn describe(&self, img: &RgbImage, det: Detection, embed: bool, t: &mut Timings) -> Result<Face> {
        let start = Instant::now();
        let aligned = self.align(img, &det)?;
        let quality = self.quality(img, &det, &aligned)?;
        t.align += start.elapsed();
        let embedding = if embed {
            let start = Instant::now();
            let e = self.embed(&aligned)?;
            t.embed += start.elapsed();
            Some(e)
        } else {
            None
        };
        Ok(Face { detection: det, quality, embedding })
    }

    /// Decode and analyze in one call.
    pub fn analyze_bytes(
        &self,
        bytes: &[u8],
        choice: FaceChoice,
        embed: bool,
    ) -> Result<(Vec<Face>, Timings), PipelineError> {
        let mut t = Timings::default();
        let start = Instant::now();
        let img = self.decode(bytes)?;
        t.decode = start.elapsed();
        let faces = self.analyze(&img, choice, embed, &mut t)?;
        Ok((faces, t))
    }
}

/// The detections `choice` keeps of `dets` (largest first) found in `img`.
/// `Single` with several faces keeps none: an error naming how many.
pub fn choose(mut dets: Vec<Detection>, choice: FaceChoice, img: &RgbImage) -> Result<Vec<Detection>, PipelineError> {
    match choice {
        FaceChoice::All => {}
        FaceChoice::Largest => dets.truncate(1),
        FaceChoice::Single if dets.len() > 1 => return Err(PipelineError::MultipleFaces(dets.len())),
        FaceChoice::Single => {}
        FaceChoice::Central => {
            let c = [img.width() as f32 / 2.0, img.height() as f32 / 2.0];
            let d2 = |d: &Detection| {
                let m = d.bbox.center();
                (m[0] - c[0]).powi(2) + (m[1] - c[1]).powi(2)
            };
            dets.sort_by(|a, b| d2(a).total_cmp(&d2(b)));
            dets.truncate(1);
        }
    }
    Ok(dets)
}
