//! Per-channel multiplies after a convolution as depthwise convolutions.
use anyhow::{Context, Result};
use tract_onnx::pb::{AttributeProto, ModelProto};

use super::dtype;
use super::graph::{GraphIndex, dims_usize, drop_unused};
use super::kept::{QUANTIZED_CONV_OP, kept_weights};
use super::tensor::{float_tensor, float_values};

/// Rewrites `Mul(x, a)` with `x` the output of a 2-D `Conv` (C channels) and
/// `a` a per-channel constant of shape `[C, 1, 1]` into a depthwise 1x1
/// `Conv` with weights `a`: tract runs such a broadcast multiply several
/// times slower than a depthwise convolution (SFace's first PRelu scale:
/// 1.6 ms as a Mul). Returns how many were rewritten.
pub fn channel_muls_to_depthwise(model: &mut ModelProto) -> Result<usize> {
    let graph = model.graph.as_mut().context("the model has no graph")?;
    let index = GraphIndex::new(graph);
    let mut new_weights = Vec::new();
    let mut count = 0;
    for k in 0..graph.node.len() {
        let n = &graph.node[k];
        if n.op_type != "Mul" || n.input.len() != 2 || n.output.len() != 1 {
            continue;
        }
        let Some(conv) = index.producer(&n.input[0]).map(|i| &graph.node[i]) else { continue };
        // The producer's output channels (NCHW): the first axis of a 2-D Conv's
        // weights [O, I, h, w], or of a kept quantized 1x1 convolution's `q`
        // [O, I].
        let weights = match conv.op_type.as_str() {
            "Conv" => conv.input.get(1).and_then(|w| index.initializer(w)).map(|i| (&graph.initializer[i], 4)),
            QUANTIZED_CONV_OP => kept_weights(conv).map(|q| (q, 2)),
            _ => None,
        };
        let Some((weights, rank)) = weights else { continue };
        let w_dims = dims_usize(weights)?;
        let Some(a) = index.initializer(&n.input[1]).map(|i| &graph.initializer[i]) else { continue };
        let channels = w_dims.first().copied().unwrap_or(0);
        if w_dims.len() != rank || a.data_type != dtype::FLOAT || dims_usize(a)? != [channels, 1, 1] {
            continue;
        }
        let weight = format!("{}__depthwise", n.output[0]);
        new_weights.push(float_tensor(&weight, &[channels, 1, 1, 1], &float_values(a)?));
        let mut group = AttributeProto { name: "group".into(), i: channels as i64, ..Default::default() };
        group.r#type = 2; // INT
        let n = &mut graph.node[k];
        n.op_type = "Conv".into();
        n.input[1] = weight;
        n.attribute = vec![group];
        count += 1;
    }
    graph.initializer.extend(new_weights);
    drop_unused(graph);
    Ok(count)
}
