//! Image-to-embedding pipeline: decoding, detection, alignment, embedding,
//! quality. Pure of HTTP and storage.
pub mod align;
pub mod decode;
pub mod detect;
pub mod embed;
pub mod files;
pub mod kept;
pub mod pipeline;
pub mod quality;
pub mod resize;
pub mod yunet_head;

pub use pipeline::{EmbeddedFace, Face, Pipeline, PipelineConfig, PipelineError, Timings, choose};
