//! Image-to-embedding pipeline: decoding, detection, alignment, embedding,
//! quality and similarity. Pure of HTTP and storage.
pub mod align;
pub mod anchors;
pub mod decode;
pub mod detect;
pub mod embed;
pub mod geometry;
pub mod pipeline;
pub mod quality;
pub mod resize;
pub mod similarity;

pub use pipeline::{EmbeddedFace, Face, Pipeline, PipelineConfig, PipelineError, Select, Timings};
