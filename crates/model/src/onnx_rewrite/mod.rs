//! Load-time rewrites of an ONNX `ModelProto` so that tract can run the
//! shipped, checksummed model files as they are.
//!
//! The default models are *block-quantized int8*: every weight is a constant
//! `DequantizeLinear` (opset 21, `block_size` attribute) followed by a
//! `Reshape` to the convolution's shape. tract refuses blocked quantization,
//! so each constant `DequantizeLinear` is folded into an f32 initializer
//! (`(q - zero_point) * scale`, with scale and zero point repeated
//! `block_size` times along `axis`), the then-constant `Reshape`s are folded,
//! and graph inputs that no node reads (SFace lists 29 stale weight inputs)
//! are dropped, as are initializers nothing reads any more.
//!
//! One file per pass; [`PASSES`] is the order they run in, and `graph`
//! holds the index of producers, readers and initializers they share.
mod batchnorm;
mod constants;
mod depthwise;
mod graph;
mod input_shape;
mod kept;
mod prelu;
mod prelu_signs;
mod tensor;
#[cfg(test)]
pub(crate) mod test_graph;
#[cfg(test)]
mod tests;

use anyhow::Result;
use tract_onnx::pb::ModelProto;

pub use batchnorm::fold_batchnorm_into_conv;
pub(crate) use constants::dequantize_node;
pub use constants::{RewriteReport, dequantize, fold_constants, reshaped_dims};
pub use depthwise::channel_muls_to_depthwise;
pub(crate) use graph::{attr_int, dims_usize, used_names};
pub use input_shape::free_input_shape;
pub use kept::{NEGATED_INPUTS, QUANTIZED_CONV_OP};
pub use prelu::rewrite_prelu;
pub use prelu_signs::fold_prelu_signs;
pub use tensor::{float_tensor, float_values, i64_values, int_values};

/// ONNX `TensorProto.DataType` codes used here.
pub mod dtype {
    pub const FLOAT: i32 = 1;
    pub const UINT8: i32 = 2;
    pub const INT8: i32 = 3;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
}

/// One rewrite: its name (for logs) and what it does, returning how many
/// places it changed.
pub struct Pass {
    pub name: &'static str,
    pub run: fn(&mut ModelProto) -> Result<usize>,
}

/// Every rewrite a model gets after [`fold_constants`], in order: batch
/// norms are folded before the PReLU passes read the convolutions' weights,
/// and the sign fold must see a PRelu before `rewrite_prelu` replaces it.
pub const PASSES: &[Pass] = &[
    Pass { name: "batchnorm_into_conv", run: fold_batchnorm_into_conv },
    Pass { name: "prelu_signs", run: fold_prelu_signs },
    Pass { name: "prelu", run: rewrite_prelu },
    Pass { name: "channel_muls_to_depthwise", run: channel_muls_to_depthwise },
];

/// Folds the quantized constants, then runs [`PASSES`]; returns the constant
/// fold's report and each pass's count.
pub fn rewrite(model: &mut ModelProto) -> Result<(RewriteReport, Vec<(&'static str, usize)>)> {
    let report = fold_constants(model)?;
    let mut counts = Vec::with_capacity(PASSES.len());
    for pass in PASSES {
        counts.push((pass.name, (pass.run)(model)?));
    }
    Ok((report, counts))
}
