//! Face embedding: aligned crops in, a unit vector out.
//!
//! An embedder is one model or a fusion of several. Each member is described
//! entirely by its manifest entry (input size, channel order, normalisation,
//! face template, output dimension), so another ONNX embedder can be
//! configured without code changes. A fusion concatenates its members' unit
//! embeddings, each scaled by the square root of its weight, so the cosine
//! of two fused embeddings is the weighted sum of the members' cosines.
//! Every embedding carries the id of the embedder that produced it.
use anyhow::{Context, Result, ensure};
use image::RgbImage;
use serde::Serialize;

use super::align::align_to;
use super::detect::image_to_tensor;
use crate::domain::Point;
use crate::domain::similarity::l2_normalize;
use visage_model::manifest::Alignment;
use visage_model::{InputSpec, LoadedModel, ModelId, Network};

/// A unit-length face embedding and the model it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Embedding {
    pub values: Vec<f32>,
    pub model: ModelId,
}

/// One model of an embedder.
pub struct Member {
    id: ModelId,
    spec: InputSpec,
    alignment: Alignment,
    width: u32,
    height: u32,
    dim: usize,
    /// Share of the fused similarity.
    weight: f32,
    network: Box<dyn Network>,
}

impl Member {
    /// Builds the fixed-shape plan and checks the output dimension with a forward pass.
    fn new(model: LoadedModel, weight: f32) -> Result<Self> {
        let spec = model.entry.input.clone();
        let width = spec.width.context("embedder input width missing")? as u32;
        let height = spec.height.context("embedder input height missing")? as u32;
        let dim = model.entry.output_dim.context("embedder output_dim missing")?;
        let network = model.network;
        network.prepare([1, 3, height as usize, width as usize])?;
        let alignment = model.entry.alignment;
        let m = Self { id: model.id, spec, alignment, width, height, dim, weight, network };
        let probe = m.raw(&RgbImage::from_pixel(width, height, image::Rgb([128, 128, 128])))?;
        ensure!(probe.len() == dim, "embedder {} returns {} values, the manifest says {dim}", m.id.name, probe.len());
        Ok(m)
    }

    pub fn id(&self) -> &ModelId {
        &self.id
    }

    /// The aligned crop size the model takes.
    pub fn input_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    pub fn alignment(&self) -> Alignment {
        self.alignment
    }

    pub fn weight(&self) -> f32 {
        self.weight
    }

    /// The model's raw output for one aligned crop.
    pub fn raw(&self, aligned: &RgbImage) -> Result<Vec<f32>> {
        ensure!(
            aligned.dimensions() == (self.width, self.height),
            "aligned crop is {:?}, the embedder takes {}x{}",
            aligned.dimensions(),
            self.width,
            self.height
        );
        let (w, h) = (self.width as usize, self.height as usize);
        let input = image_to_tensor(aligned, &self.spec, w, h);
        let out = self.network.run(input, [1, 3, h, w])?;
        out.into_iter().next().context("the embedder returned no output")
    }

    /// The unit embedding of a crop; with `flip`, of the mean of the crop's
    /// and its mirror image's unit embeddings (test-time augmentation).
    fn unit(&self, aligned: &RgbImage, flip: bool) -> Result<Vec<f32>> {
        let mut values = self.raw(aligned)?;
        if flip {
            let mut other = self.raw(&image::imageops::flip_horizontal(aligned))?;
            l2_normalize(&mut values);
            l2_normalize(&mut other);
            values.iter_mut().zip(&other).for_each(|(a, b)| *a += b);
        }
        ensure!(l2_normalize(&mut values), "the embedder returned a zero or non-finite vector");
        Ok(values)
    }
}

pub struct Embedder {
    id: ModelId,
    members: Vec<Member>,
}

impl Embedder {
    /// An embedder of one model.
    pub fn new(model: LoadedModel) -> Result<Self> {
        let member = Member::new(model, 1.0)?;
        Ok(Self { id: member.id.clone(), members: vec![member] })
    }

    /// An embedder of one or more models with their weights, under `id`
    /// ([`visage_model::embedder_id`]: a single model keeps its own id).
    pub fn fused(id: ModelId, models: Vec<(LoadedModel, f32)>) -> Result<Self> {
        ensure!(!models.is_empty(), "an embedder needs a model");
        let members = models.into_iter().map(|(m, w)| Member::new(m, w)).collect::<Result<Vec<_>>>()?;
        Ok(Self { id, members })
    }

    pub fn id(&self) -> &ModelId {
        &self.id
    }

    pub fn backend(&self) -> visage_model::Backend {
        self.members[0].network.backend()
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The length of the embeddings.
    pub fn dim(&self) -> usize {
        self.members.iter().map(|m| m.dim).sum()
    }

    /// One crop per member, aligned to its template; None for degenerate landmarks.
    pub fn crops(&self, img: &RgbImage, landmarks: &[Point; 5]) -> Option<Vec<RgbImage>> {
        self.members.iter().map(|m| align_to(img, landmarks, m.alignment, m.width, m.height)).collect()
    }

    /// The unit embedding of a face from its crops (one per member, as
    /// [`Embedder::crops`] makes them).
    pub fn embed(&self, crops: &[RgbImage], flip: bool) -> Result<Embedding> {
        ensure!(crops.len() == self.members.len(), "{} crops for {} models", crops.len(), self.members.len());
        let mut values = Vec::with_capacity(self.dim());
        for (m, crop) in self.members.iter().zip(crops) {
            let scale = m.weight.sqrt();
            values.extend(m.unit(crop, flip)?.into_iter().map(|v| v * scale));
        }
        // Exactly unit already when the weights sum to 1; renormalise the rounding.
        ensure!(l2_normalize(&mut values), "the embedder returned a zero or non-finite vector");
        Ok(Embedding { values, model: self.id.clone() })
    }
}
