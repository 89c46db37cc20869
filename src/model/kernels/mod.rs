//! visage's own CPU kernels, registered into tract's graphs where tract's
//! generic ones are slow on the models visage runs (issue 12: depthwise
//! convolutions, convolutions with few input channels, the PReLU after each
//! convolution of SFace, YuNet's max pooling).
//! Features are detected at run time; nothing assumes the build machine's CPU.
pub mod conv;
mod fuse;
pub mod gemm;
mod ops;
pub mod pool;

pub use fuse::{Fused, fuse};
