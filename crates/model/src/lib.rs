//! The ONNX models: the manifest that describes them, checksum-verified
//! loading, and the load-time graph rewrites that let tract run them.
// A model file is input: no panics outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
pub mod dlib;
pub mod kernels;
pub mod manifest;
pub mod network;
pub mod onnx_rewrite;
#[cfg(feature = "onnxruntime")]
pub mod onnxruntime;
pub mod tract;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use prost::Message;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tract_onnx::pb::ModelProto;

pub use manifest::{ChannelOrder, EmbedderPlan, InputSpec, Manifest, ModelEntry, ModelFormat, ModelKind};
pub use network::{Backend, BackendConfig, Network};

/// The command that fetches the default models, named in every error about them.
pub const FETCH_HINT: &str = "run `make models` (or `python3 models/fetch.py`) to fetch them";

/// Which model produced something: its manifest id and the SHA-256 of its file.
/// Embeddings from different model ids are never compared.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ModelId {
    pub name: String,
    pub sha256: String,
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@sha256:{}", self.name, self.sha256)
    }
}

/// The id of the embeddings an embedder makes: a single model's own id; for
/// a fusion, its name and a digest of every member's id and weight, so that
/// changing either makes embeddings of another model.
pub fn embedder_id(plan: &EmbedderPlan) -> ModelId {
    match plan.members.as_slice() {
        [(entry, _)] => ModelId { name: entry.id.clone(), sha256: entry.sha256.to_lowercase() },
        members => {
            let recipe: Vec<String> =
                members.iter().map(|(e, w)| format!("{}@sha256:{}*{w}", e.id, e.sha256.to_lowercase())).collect();
            ModelId { name: plan.name.clone(), sha256: sha256_hex(recipe.join("+").as_bytes()) }
        }
    }
}

/// Why a model file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    #[error("model file {path} is missing: {FETCH_HINT}")]
    Missing { path: PathBuf },
    #[error("model file {path} has SHA-256 {actual}, expected {expected}: {FETCH_HINT}")]
    Checksum { path: PathBuf, expected: String, actual: String },
    #[error("cannot read model file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads a model file and checks it against the manifest's SHA-256.
pub fn read_verified(path: &Path, expected_sha256: &str) -> Result<Vec<u8>, ModelFileError> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ModelFileError::Missing { path: path.to_path_buf() },
        _ => ModelFileError::Io { path: path.to_path_buf(), source: e },
    })?;
    let actual = sha256_hex(&bytes);
    if !actual.eq_ignore_ascii_case(expected_sha256) {
        return Err(ModelFileError::Checksum {
            path: path.to_path_buf(),
            expected: expected_sha256.to_string(),
            actual,
        });
    }
    Ok(bytes)
}

/// Reads, verifies and rewrites a model file: quantized constants folded,
/// BatchNormalization folded into Conv, PRelu expressed in faster ops. A
/// dlib network is read from its own format into an ONNX graph instead.
pub fn rewritten_proto(dir: &Path, entry: &ModelEntry) -> Result<ModelProto> {
    rewrite(dir, entry, false)
}

/// The graph the tract backend runs: [`rewritten_proto`], but with visage's
/// kernels on (and a CPU with AVX2 and FMA), block-quantized fully connected
/// layers stay int8 ([`kernels::keep_quantized_gemms`]), and so do 1x1
/// convolutions where visage's matrix products replace tract's (AVX2 without
/// AVX-512: [`kernels::keep_quantized_convs`]); only tract with
/// [`kernels::register`] reads them.
pub fn tract_proto(dir: &Path, entry: &ModelEntry) -> Result<ModelProto> {
    rewrite(dir, entry, kernels::enabled() && kernels::qgemv::fast())
}

fn rewrite(dir: &Path, entry: &ModelEntry, keep_quantized: bool) -> Result<ModelProto> {
    let path = dir.join(&entry.file);
    let bytes = read_verified(&path, &entry.sha256)?;
    if entry.format == ModelFormat::Dlib {
        return dlib::resnet_to_onnx(&bytes, &entry.input).with_context(|| format!("reading {}", path.display()));
    }
    let mut proto =
        ModelProto::decode(bytes.as_slice()).with_context(|| format!("{} is not an ONNX model", path.display()))?;
    let kept = if keep_quantized { kernels::keep_quantized_gemms(&mut proto)? } else { 0 };
    let kept_convs =
        if keep_quantized && kernels::integer_convs() { kernels::keep_quantized_convs(&mut proto)? } else { 0 };
    let (report, passes) =
        onnx_rewrite::rewrite(&mut proto).with_context(|| format!("rewriting {}", path.display()))?;
    tracing::debug!(model = %entry.id, kept, kept_convs, ?report, ?passes, "rewrote the graph");
    Ok(proto)
}

/// A verified, rewritten ONNX model on its inference backend.
pub struct LoadedModel {
    pub id: ModelId,
    pub entry: ModelEntry,
    /// Output names in graph order.
    pub outputs: Vec<String>,
    pub network: Box<dyn Network>,
}

impl LoadedModel {
    /// Loads `entry` from `dir`, verifying its checksum and rewriting the
    /// graph, on the configured backend.
    pub fn load(dir: &Path, entry: &ModelEntry, backend: &BackendConfig) -> Result<Self> {
        let proto = match backend.backend {
            Backend::Tract => tract_proto(dir, entry)?,
            Backend::Onnxruntime => rewritten_proto(dir, entry)?,
        };
        let outputs =
            proto.graph.as_ref().map(|g| g.output.iter().map(|o| o.name.clone()).collect()).unwrap_or_default();
        let network = build_network(&proto, &entry.id, backend, dir)
            .with_context(|| format!("loading {} on {}", entry.id, backend.backend.name()))?;
        Ok(Self {
            id: ModelId { name: entry.id.clone(), sha256: entry.sha256.to_lowercase() },
            entry: entry.clone(),
            outputs,
            network,
        })
    }
}

/// Builds the network for a rewritten model with the configured backend.
fn build_network(
    proto: &ModelProto,
    name: &str,
    config: &BackendConfig,
    models_dir: &std::path::Path,
) -> Result<Box<dyn Network>> {
    match config.backend {
        Backend::Tract => Ok(Box::new(tract::TractNetwork::new(proto, name)?)),
        Backend::Onnxruntime => {
            let lib =
                config.onnxruntime_library.clone().unwrap_or_else(|| network::default_onnxruntime_library(models_dir));
            onnxruntime_network(proto, name, &lib)
        }
    }
}

#[cfg(feature = "onnxruntime")]
fn onnxruntime_network(proto: &ModelProto, name: &str, lib: &std::path::Path) -> Result<Box<dyn Network>> {
    Ok(Box::new(onnxruntime::OrtNetwork::new(proto, name, lib)?))
}

#[cfg(not(feature = "onnxruntime"))]
fn onnxruntime_network(_: &ModelProto, _: &str, _: &std::path::Path) -> Result<Box<dyn Network>> {
    anyhow::bail!(
        "this visage was built without the onnxruntime backend: rebuild with `--features onnxruntime` \
         (and run `make onnxruntime` to fetch the library), or use the default backend, tract"
    )
}
