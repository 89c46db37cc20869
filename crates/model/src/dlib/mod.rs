//! dlib's ResNet face descriptor (`dlib_face_recognition_resnet_model_v1.dat`,
//! CC0) read from dlib's own file format and built into an ONNX graph at load
//! time: the shipped file stays exactly as downloaded and checksummed, and no
//! conversion step or dlib installation is needed.
//!
//! - [`serialize`]: dlib's binary encoding of integers, floats, strings and tensors.
//! - [`resnet`]: the network's structure (`anet_type`) and its parameters.
//! - [`graph`]: the equivalent ONNX model.
pub mod graph;
pub mod resnet;
pub mod serialize;

use anyhow::{Result, ensure};
use tract_onnx::pb::ModelProto;

use super::InputSpec;

/// Reads a dlib face-recognition network and returns its ONNX model, after
/// checking that the manifest's input description (`mean`, `std` and size)
/// is the one the file was trained with.
pub fn resnet_to_onnx(bytes: &[u8], spec: &InputSpec) -> Result<ModelProto> {
    let net = resnet::read(bytes)?;
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-3 * a.abs().max(1.0);
    ensure!(
        net.input.means.iter().zip(&spec.mean).all(|(a, b)| close(*a, *b)) && spec.std.iter().all(|s| close(*s, 256.0)),
        "the manifest's input normalisation differs from the file's: means {:?}, std 256",
        net.input.means
    );
    ensure!(
        spec.width == Some(net.input.cols) && spec.height == Some(net.input.rows),
        "the manifest's input size differs from the file's {}x{}",
        net.input.cols,
        net.input.rows
    );
    graph::to_onnx(&net)
}
