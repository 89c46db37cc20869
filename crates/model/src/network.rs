//! The seam between the models and the engines that run them: an NCHW f32
//! tensor in, the model's outputs out. The detector and embedder only see
//! [`Network`], so the backend is a start-up choice, not a code path through
//! the pipeline. The implementations are leaves below it:
//!
//! - [`Backend::Tract`] (default, pure Rust, `model::tract`): one optimised
//!   plan per input shape, built on first use and cached.
//! - [`Backend::Onnxruntime`] (cargo feature `onnxruntime`, off by default,
//!   `model::onnxruntime`): ONNX Runtime loaded at run time from its shared
//!   library.
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

/// Which engine runs the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// tract, compiled in (pure Rust).
    #[default]
    Tract,
    /// ONNX Runtime's shared library, loaded at start-up (build with
    /// `--features onnxruntime`; `make onnxruntime` fetches the library).
    Onnxruntime,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Tract => "tract",
            Self::Onnxruntime => "onnxruntime",
        }
    }
}

/// The backend and, for ONNX Runtime, where its library is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackendConfig {
    pub backend: Backend,
    /// ONNX Runtime's shared library (default: [`default_onnxruntime_library`]).
    pub onnxruntime_library: Option<PathBuf>,
}

/// Where `make onnxruntime` puts the library: `<models_dir>/onnxruntime/`.
pub fn default_onnxruntime_library(models_dir: &std::path::Path) -> PathBuf {
    models_dir.join("onnxruntime").join(if cfg!(target_os = "macos") {
        "libonnxruntime.dylib"
    } else if cfg!(windows) {
        "onnxruntime.dll"
    } else {
        "libonnxruntime.so"
    })
}

/// One model, ready to run on inputs of any shape it accepts.
pub trait Network: Send + Sync {
    /// Runs the model on one NCHW f32 tensor (`input.len()` must be the
    /// product of `shape`); returns every output's values in graph order.
    fn run(&self, input: Vec<f32>, shape: [usize; 4]) -> Result<Vec<Vec<f32>>>;

    /// Does the per-shape work ahead of time (tract optimises a plan).
    fn prepare(&self, shape: [usize; 4]) -> Result<()>;

    fn backend(&self) -> Backend;

    /// Whether a portrait input runs faster padded to a square (tract's own
    /// depthwise convolutions are slower on such inputs than on the square).
    fn prefers_square_portrait(&self) -> bool {
        false
    }
}
