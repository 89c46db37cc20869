//! Face embedding: an aligned crop in, a unit vector out.
//!
//! The embedder is described entirely by its manifest entry (input size,
//! channel order, normalisation, output dimension), so another ONNX embedder
//! can be configured without code changes. Every embedding carries the id of
//! the model that produced it.
use anyhow::{Context, Result, ensure};
use image::RgbImage;
use serde::Serialize;

use super::detect::image_to_tensor;
use super::similarity::l2_normalize;
use crate::model::{InputSpec, LoadedModel, ModelId, Network};

/// A unit-length face embedding and the model it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Embedding {
    pub values: Vec<f32>,
    pub model: ModelId,
}

pub struct Embedder {
    id: ModelId,
    spec: InputSpec,
    width: u32,
    height: u32,
    dim: usize,
    /// Default cosine threshold for 1:1 decisions, from the manifest.
    pub threshold: Option<f32>,
    network: Box<dyn Network>,
}

impl Embedder {
    /// Builds the fixed-shape plan and checks the output dimension with a forward pass.
    pub fn new(model: LoadedModel) -> Result<Self> {
        let spec = model.entry.input.clone();
        let width = spec.width.context("embedder input width missing")? as u32;
        let height = spec.height.context("embedder input height missing")? as u32;
        let dim = model.entry.output_dim.context("embedder output_dim missing")?;
        let network = model.network;
        network.prepare([1, 3, height as usize, width as usize])?;
        let e = Self { id: model.id, spec, width, height, dim, threshold: model.entry.threshold, network };
        let probe = e.raw(&RgbImage::from_pixel(width, height, image::Rgb([128, 128, 128])))?;
        ensure!(probe.len() == dim, "embedder {} returns {} values, the manifest says {dim}", e.id.name, probe.len());
        Ok(e)
    }

    pub fn id(&self) -> &ModelId {
        &self.id
    }

    pub fn backend(&self) -> crate::model::Backend {
        self.network.backend()
    }

    /// The aligned crop size the model takes.
    pub fn input_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    pub fn dim(&self) -> usize {
        self.dim
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

    /// The L2-normalised embedding of an aligned crop; with `flip`, the mean of
    /// the crop's and its mirror image's embeddings (test-time augmentation).
    pub fn embed(&self, aligned: &RgbImage, flip: bool) -> Result<Embedding> {
        let mut values = self.raw(aligned)?;
        if flip {
            let mirrored = image::imageops::flip_horizontal(aligned);
            let other = self.raw(&mirrored)?;
            l2_normalize(&mut values);
            let mut other = other;
            l2_normalize(&mut other);
            values.iter_mut().zip(&other).for_each(|(a, b)| *a += b);
        }
        ensure!(l2_normalize(&mut values), "the embedder returned a zero or non-finite vector");
        Ok(Embedding { values, model: self.id.clone() })
    }
}
