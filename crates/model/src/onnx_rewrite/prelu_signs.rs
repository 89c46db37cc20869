//! Folding the signs of a PRelu with slopes above 1 into the convolutions
//! around it.
use std::collections::HashMap;

use anyhow::{Context, Result, ensure};
use tract_onnx::pb::{GraphProto, ModelProto, NodeProto};

use super::graph::{GraphIndex, attr_int, dims_usize, single_output_node};
use super::kept::{QUANTIZED_CONV_OP, kept_depth, toggle_negated_inputs};
use super::tensor::{float_tensor, float_values};

/// Makes `Max(z, slope · z)` usable for a PRelu with slopes above 1, whose
/// general form costs tract several passes over the tensor. For channels
/// with slope `a > 1`, `-PRelu(x) = Max(-x, a · (-x))`; so when `x` comes
/// from a Conv read by nothing else and the PRelu's output feeds only Convs,
/// those channels are negated in the producing Conv (weights and bias), the
/// PRelu becomes `Max(z, a · z)`, and the consumers' weights for those input
/// channels are negated back (for a kept integer convolution, whose int8
/// values cannot change sign in place, by listing them in its
/// [`super::NEGATED_INPUTS`]). All weights must be constants read by that
/// node alone. Runs after BatchNormalization folding; returns how many
/// PRelus were rewritten.
pub fn fold_prelu_signs(model: &mut ModelProto) -> Result<usize> {
    let graph = model.graph.as_mut().context("the model has no graph")?;
    let index = GraphIndex::new(graph);
    let mut replaced: HashMap<usize, [NodeProto; 2]> = HashMap::new();
    for p in 0..graph.node.len() {
        if graph.node[p].op_type != "PRelu" {
            continue;
        }
        // A copy: the consumers may be changed in place below.
        let prelu = graph.node[p].clone();
        let Some(fold) = plan(graph, &index, p, &prelu)? else { continue };
        apply(graph, fold)?;
        let (x, slope, y) = (&prelu.input[0], &prelu.input[1], &prelu.output[0]);
        let scaled = format!("{}__prelu_scaled", if prelu.name.is_empty() { y } else { &prelu.name });
        replaced.insert(
            p,
            [
                single_output_node("Mul", vec![x.clone(), slope.clone()], scaled.clone()),
                single_output_node("Max", vec![x.clone(), scaled], y.clone()),
            ],
        );
    }
    let count = replaced.len();
    let nodes = std::mem::take(&mut graph.node);
    for (i, n) in nodes.into_iter().enumerate() {
        match replaced.remove(&i) {
            Some(pair) => graph.node.extend(pair),
            None => graph.node.push(n),
        }
    }
    Ok(count)
}

/// What one fold changes: the producer's weights (and bias), the channels
/// whose sign flips, and the consumers that negate them back.
struct Fold {
    producer_weights: usize,
    producer_bias: Option<usize>,
    flip: Vec<bool>,
    /// Float convolutions: weight initializer, its dims, its group count.
    convs: Vec<(usize, Vec<usize>, usize)>,
    /// Kept integer convolutions (node indices).
    kept: Vec<usize>,
}

/// The fold of PRelu node `p`, when every condition holds.
fn plan(graph: &GraphProto, index: &GraphIndex, p: usize, prelu: &NodeProto) -> Result<Option<Fold>> {
    if prelu.input.len() != 2 || prelu.output.len() != 1 {
        return Ok(None);
    }
    let (x, y) = (&prelu.input[0], &prelu.output[0]);
    let Some(slope) = index.initializer(&prelu.input[1]).map(|i| &graph.initializer[i]) else { return Ok(None) };
    let slopes = float_values(slope)?;
    if slopes.iter().all(|a| *a <= 1.0) || index.is_output(x) || index.is_output(y) {
        return Ok(None);
    }
    let Some(conv) = index.producer(x).map(|c| &graph.node[c]) else { return Ok(None) };
    if conv.op_type != "Conv" || !index.read_only_by(x, p) || conv.input.len() < 2 {
        return Ok(None);
    }
    let Some(producer_weights) = index.private_initializer(&conv.input[1]) else { return Ok(None) };
    let producer_bias = match conv.input.get(2).filter(|b| !b.is_empty()) {
        Some(b) => match index.private_initializer(b) {
            Some(i) => Some(i),
            None => return Ok(None),
        },
        None => None,
    };
    let channels = dims_usize(&graph.initializer[producer_weights])?.first().copied().unwrap_or(0);
    if slopes.len() != channels || channels == 0 {
        return Ok(None);
    }
    let Some((convs, kept)) = consumers(graph, index, y, channels)? else { return Ok(None) };
    let flip = slopes.iter().map(|a| *a > 1.0).collect();
    Ok(Some(Fold { producer_weights, producer_bias, flip, convs, kept }))
}

/// Every reader of `y` when each is a Conv taking it as data input with
/// private weights of `channels` inputs, or a kept integer convolution of
/// that depth; None when one is not.
#[allow(clippy::type_complexity)]
fn consumers(
    graph: &GraphProto,
    index: &GraphIndex,
    y: &str,
    channels: usize,
) -> Result<Option<(Vec<(usize, Vec<usize>, usize)>, Vec<usize>)>> {
    let readers = index.readers(y);
    if readers.is_empty() {
        return Ok(None);
    }
    let (mut convs, mut kept) = (Vec::new(), Vec::new());
    for &k in readers {
        let next = &graph.node[k];
        if next.op_type == QUANTIZED_CONV_OP && next.input.first().is_some_and(|i| i == y) {
            if kept_depth(next)? != channels {
                return Ok(None);
            }
            kept.push(k);
            continue;
        }
        let group = attr_int(next, "group").unwrap_or(1).max(1) as usize;
        let ok = next.op_type == "Conv" && next.input.len() >= 2 && next.input[0] == y && next.input[1] != y;
        let Some(w) = ok.then(|| index.private_initializer(&next.input[1])).flatten() else { return Ok(None) };
        let dims = dims_usize(&graph.initializer[w])?;
        if dims.len() < 2 || dims[1] * group != channels || dims[0] % group != 0 {
            return Ok(None);
        }
        convs.push((w, dims, group));
    }
    Ok(Some((convs, kept)))
}

/// Negates the flipped output channels of the producer and the same input
/// channels of every consumer.
fn apply(graph: &mut GraphProto, fold: Fold) -> Result<()> {
    let channels = fold.flip.len();
    let negate = |v: &mut [f32]| v.iter_mut().for_each(|x| *x = -*x);
    let w1 = &graph.initializer[fold.producer_weights];
    let (name, dims, mut w) = (w1.name.clone(), dims_usize(w1)?, float_values(w1)?);
    let per = w.len() / channels;
    for (ch, _) in fold.flip.iter().enumerate().filter(|(_, f)| **f) {
        negate(&mut w[ch * per..(ch + 1) * per]);
    }
    graph.initializer[fold.producer_weights] = float_tensor(&name, &dims, &w);
    if let Some(b1) = fold.producer_bias {
        let mut b = float_values(&graph.initializer[b1])?;
        ensure!(b.len() == channels, "convolution bias of {} values for {channels} channels", b.len());
        b.iter_mut().zip(&fold.flip).filter(|(_, f)| **f).for_each(|(v, _)| *v = -*v);
        let name = graph.initializer[b1].name.clone();
        graph.initializer[b1] = float_tensor(&name, &[channels], &b);
    }
    for (w2, dims, group) in fold.convs {
        let mut w = float_values(&graph.initializer[w2])?;
        let (outs, per_group_in) = (dims[0], dims[1]);
        let kernel = w.len() / (outs * per_group_in);
        for o in 0..outs {
            let g = o / (outs / group);
            for i in (0..per_group_in).filter(|i| fold.flip[g * per_group_in + i]) {
                let at = (o * per_group_in + i) * kernel;
                negate(&mut w[at..at + kernel]);
            }
        }
        let name = graph.initializer[w2].name.clone();
        graph.initializer[w2] = float_tensor(&name, &dims, &w);
    }
    for k in fold.kept {
        toggle_negated_inputs(&mut graph.node[k], &fold.flip);
    }
    Ok(())
}
