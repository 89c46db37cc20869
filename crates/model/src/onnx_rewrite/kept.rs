//! The 1x1 convolutions kept block-quantized for visage's integer kernel
//! (`kernels::quantized_conv`), as the passes meet them: their operator
//! type, their int8 weights, and the input channels they negate.
use std::collections::HashSet;

use anyhow::{Context, Result};
use tract_onnx::pb::{AttributeProto, NodeProto, TensorProto};

use super::graph::dims_usize;

/// The ONNX operator type of a 1x1 convolution kept block-quantized for
/// visage's integer kernel (`kernels::quantized_conv`), which the passes
/// here may meet after it.
pub const QUANTIZED_CONV_OP: &str = "VisageQuantizedConv";

/// The attribute of a kept integer convolution ([`QUANTIZED_CONV_OP`])
/// listing the input channels whose weights change sign when it is built.
pub const NEGATED_INPUTS: &str = "negated_inputs";

/// `AttributeProto.type` of a list of integers.
const ATTR_INTS: i32 = 7;

/// A kept integer convolution's int8 weights (`q`, `rows x depth`).
pub(super) fn kept_weights(node: &NodeProto) -> Option<&TensorProto> {
    node.attribute.iter().find(|a| a.name == "q").and_then(|a| a.t.as_ref())
}

/// Input channels of a kept integer convolution.
pub(super) fn kept_depth(node: &NodeProto) -> Result<usize> {
    let q = kept_weights(node).with_context(|| format!("{QUANTIZED_CONV_OP} without attribute q"))?;
    Ok(dims_usize(q)?.get(1).copied().unwrap_or(0))
}

/// Adds the channels `flip` marks to a kept convolution's
/// [`NEGATED_INPUTS`] (or takes them out: negated twice is unchanged).
pub(super) fn toggle_negated_inputs(node: &mut NodeProto, flip: &[bool]) {
    let mut negated: HashSet<i64> = node
        .attribute
        .iter()
        .find(|a| a.name == NEGATED_INPUTS)
        .map(|a| a.ints.iter().copied().collect())
        .unwrap_or_default();
    for (c, _) in flip.iter().enumerate().filter(|(_, f)| **f) {
        if !negated.remove(&(c as i64)) {
            negated.insert(c as i64);
        }
    }
    let mut ints: Vec<i64> = negated.into_iter().collect();
    ints.sort_unstable();
    node.attribute.retain(|a| a.name != NEGATED_INPUTS);
    node.attribute.push(AttributeProto { name: NEGATED_INPUTS.into(), r#type: ATTR_INTS, ints, ..Default::default() });
}
