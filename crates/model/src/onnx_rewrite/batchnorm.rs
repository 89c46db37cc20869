//! Folding each `BatchNormalization` into the `Conv` before it.
use std::collections::HashSet;

use anyhow::{Context, Result, ensure};
use tract_onnx::pb::ModelProto;

use super::graph::{GraphIndex, dims_usize, drop_unused};
use super::tensor::{float_tensor, float_values};

/// Folds every `BatchNormalization` that directly follows a `Conv` (whose
/// output nothing else reads) into the convolution's weights and bias:
/// `W' = W · γ/√(σ²+ε)` per output channel, `b' = (b − μ) · γ/√(σ²+ε) + β`.
/// Returns how many were folded.
pub fn fold_batchnorm_into_conv(model: &mut ModelProto) -> Result<usize> {
    let graph = model.graph.as_mut().context("the model has no graph")?;
    let mut index = GraphIndex::new(graph);
    let mut remove = HashSet::new();
    let mut folded = 0;
    for bn_index in 0..graph.node.len() {
        let bn = &graph.node[bn_index];
        if bn.op_type != "BatchNormalization" || bn.input.len() != 5 || bn.output.len() != 1 {
            continue;
        }
        let Some(conv_index) = index.producer(&bn.input[0]) else { continue };
        let conv = &graph.node[conv_index];
        if conv.op_type != "Conv" || !index.read_only_by(&bn.input[0], bn_index) || conv.input.len() < 2 {
            continue;
        }
        let get = |name: &str| index.initializer(name).map(|i| &graph.initializer[i]);
        let (Some(w), Some(gamma), Some(beta), Some(mean), Some(var)) =
            (get(&conv.input[1]), get(&bn.input[1]), get(&bn.input[2]), get(&bn.input[3]), get(&bn.input[4]))
        else {
            continue;
        };
        let eps = bn.attribute.iter().find(|a| a.name == "epsilon").map_or(1e-5, |a| a.f);
        let (gamma, beta, mean, var) =
            (float_values(gamma)?, float_values(beta)?, float_values(mean)?, float_values(var)?);
        let w_dims = dims_usize(w)?;
        let mut weights = float_values(w)?;
        let out_channels = *w_dims.first().context("convolution weight without dimensions")?;
        ensure!(
            [&gamma, &beta, &mean, &var].iter().all(|v| v.len() == out_channels),
            "batch norm {} does not match {out_channels} channels",
            bn.name
        );
        let mut bias = match conv.input.get(2).filter(|b| !b.is_empty()) {
            Some(b) => float_values(get(b).context("a convolution bias that is not constant")?)?,
            None => vec![0.0; out_channels],
        };
        let per_channel = weights.len() / out_channels;
        for c in 0..out_channels {
            let k = gamma[c] / (var[c] + eps).sqrt();
            weights[c * per_channel..(c + 1) * per_channel].iter_mut().for_each(|w| *w *= k);
            bias[c] = (bias[c] - mean[c]) * k + beta[c];
        }
        let (w_name, b_name) = (format!("{}__bn_folded_weight", conv.name), format!("{}__bn_folded_bias", conv.name));
        let bn_out = bn.output[0].clone();
        graph.initializer.push(float_tensor(&w_name, &w_dims, &weights));
        index.add_initializer(w_name.clone(), graph.initializer.len() - 1);
        graph.initializer.push(float_tensor(&b_name, &[out_channels], &bias));
        index.add_initializer(b_name.clone(), graph.initializer.len() - 1);
        let conv = &mut graph.node[conv_index];
        conv.input.truncate(1);
        conv.input.extend([w_name, b_name]);
        conv.output = vec![bn_out];
        remove.insert(bn_index);
        folded += 1;
    }
    let mut i = 0;
    graph.node.retain(|_| {
        i += 1;
        !remove.contains(&(i - 1))
    });
    drop_unused(graph);
    Ok(folded)
}
