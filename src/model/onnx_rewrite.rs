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
use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result, bail, ensure};
use tract_onnx::pb::{AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto};

/// ONNX `TensorProto.DataType` codes used here.
pub mod dtype {
    pub const FLOAT: i32 = 1;
    pub const UINT8: i32 = 2;
    pub const INT8: i32 = 3;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
}

/// What a rewrite changed, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RewriteReport {
    pub dequantize_folded: usize,
    pub reshape_folded: usize,
    pub inputs_dropped: usize,
    pub initializers_dropped: usize,
}

/// Folds constant `DequantizeLinear` and `Reshape` nodes into initializers and
/// drops unused graph inputs and initializers.
pub fn fold_constants(model: &mut ModelProto) -> Result<RewriteReport> {
    let graph = model.graph.as_mut().context("the model has no graph")?;
    let mut report = RewriteReport::default();

    let mut consts: HashMap<String, TensorProto> = graph.initializer.drain(..).map(|t| (t.name.clone(), t)).collect();
    let mut kept = Vec::with_capacity(graph.node.len());
    // ONNX nodes are topologically sorted, so one pass sees every producer
    // before its consumers.
    for node in graph.node.drain(..) {
        let all_const = !node.input.is_empty() && node.input.iter().all(|i| i.is_empty() || consts.contains_key(i));
        let folded = match (node.op_type.as_str(), all_const) {
            ("DequantizeLinear", true) => Some(dequantize_node(&node, &consts)?),
            ("Reshape", true) => Some(reshape_node(&node, &consts)?),
            _ => None,
        };
        match folded {
            Some(mut t) => {
                if node.op_type == "DequantizeLinear" {
                    report.dequantize_folded += 1;
                } else {
                    report.reshape_folded += 1;
                }
                let out = node.output.first().context("a folded node has no output")?;
                t.name = out.clone();
                consts.insert(out.clone(), t);
            }
            None => kept.push(node),
        }
    }
    graph.node = kept;

    let used = used_names(graph);
    let before = consts.len();
    let mut initializers: Vec<TensorProto> = consts.into_values().filter(|t| used.contains(&t.name)).collect();
    initializers.sort_by(|a, b| a.name.cmp(&b.name));
    report.initializers_dropped = before - initializers.len();
    graph.initializer = initializers;

    let before = graph.input.len();
    graph.input.retain(|i| used.contains(&i.name));
    report.inputs_dropped = before - graph.input.len();
    Ok(report)
}

/// Every name read by a node (including sub-graphs) or exposed as a graph output.
pub(crate) fn used_names(graph: &GraphProto) -> HashSet<String> {
    fn visit(g: &GraphProto, used: &mut HashSet<String>) {
        for n in &g.node {
            used.extend(n.input.iter().filter(|i| !i.is_empty()).cloned());
            for a in &n.attribute {
                if let Some(sub) = &a.g {
                    visit(sub, used);
                }
                for sub in &a.graphs {
                    visit(sub, used);
                }
            }
        }
        used.extend(g.output.iter().map(|o| o.name.clone()));
    }
    let mut used = HashSet::new();
    visit(graph, &mut used);
    used
}

pub(crate) fn attr_int(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a: &&AttributeProto| a.name == name).map(|a| a.i)
}

pub(crate) fn dims_usize(t: &TensorProto) -> Result<Vec<usize>> {
    t.dims.iter().map(|&d| usize::try_from(d).with_context(|| format!("negative dimension in {}", t.name))).collect()
}

fn check_inline(t: &TensorProto) -> Result<()> {
    ensure!(
        t.external_data.is_empty() && t.data_location.unwrap_or(0) == 0,
        "tensor {} uses external data, which is not supported",
        t.name
    );
    Ok(())
}

/// The values of an integer tensor (int8, uint8, int32) widened to i32.
pub fn int_values(t: &TensorProto) -> Result<Vec<i32>> {
    check_inline(t)?;
    let raw = &t.raw_data;
    Ok(match t.data_type {
        dtype::INT8 if !raw.is_empty() => raw.iter().map(|&b| b as i8 as i32).collect(),
        dtype::UINT8 if !raw.is_empty() => raw.iter().map(|&b| b as i32).collect(),
        dtype::INT32 if !raw.is_empty() => {
            raw.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        }
        dtype::INT8 | dtype::UINT8 | dtype::INT32 => t.int32_data.clone(),
        other => bail!("tensor {} has type {other}, expected an 8- or 32-bit integer", t.name),
    })
}

/// The values of a float tensor.
pub fn float_values(t: &TensorProto) -> Result<Vec<f32>> {
    check_inline(t)?;
    ensure!(t.data_type == dtype::FLOAT, "tensor {} is not float32", t.name);
    Ok(if t.raw_data.is_empty() {
        t.float_data.clone()
    } else {
        t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    })
}

/// The values of an int64 tensor (shapes).
pub fn i64_values(t: &TensorProto) -> Result<Vec<i64>> {
    check_inline(t)?;
    ensure!(t.data_type == dtype::INT64, "tensor {} is not int64", t.name);
    Ok(if t.raw_data.is_empty() {
        t.int64_data.clone()
    } else {
        t.raw_data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect()
    })
}

/// A float32 tensor with its values stored as little-endian raw data.
pub fn float_tensor(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: dtype::FLOAT,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

pub(crate) fn dequantize_node(node: &NodeProto, consts: &HashMap<String, TensorProto>) -> Result<TensorProto> {
    let get = |i: usize| node.input.get(i).filter(|n| !n.is_empty()).map(|n| &consts[n]);
    let q = get(0).context("DequantizeLinear without input")?;
    let scale = get(1).context("DequantizeLinear without scale")?;
    let zero = get(2);
    let dims = dims_usize(q)?;
    let q_values = int_values(q)?;
    let scales = float_values(scale)?;
    let zeros = match zero {
        Some(z) => int_values(z)?,
        None => vec![0; scales.len()],
    };
    let values = dequantize(
        &q_values,
        &dims,
        &scales,
        &dims_usize(scale)?,
        &zeros,
        attr_int(node, "axis").unwrap_or(1),
        attr_int(node, "block_size").unwrap_or(0),
    )
    .with_context(|| format!("folding DequantizeLinear {}", node.name))?;
    Ok(float_tensor("", &dims, &values))
}

/// `(q - zero_point) * scale` following ONNX `DequantizeLinear` semantics:
/// per-tensor (one scale), per-axis (`block_size` 0, a 1-D scale along `axis`)
/// or blocked (`block_size` > 0, the scale has `q`'s rank with
/// `ceil(dim / block_size)` along `axis`; the last block may be partial).
pub fn dequantize(
    q: &[i32],
    dims: &[usize],
    scale: &[f32],
    scale_dims: &[usize],
    zero: &[i32],
    axis: i64,
    block_size: i64,
) -> Result<Vec<f32>> {
    let n: usize = dims.iter().product();
    ensure!(q.len() == n, "quantized data has {} values for shape {dims:?}", q.len());
    ensure!(zero.len() == scale.len(), "zero point and scale differ in size");
    if scale.len() == 1 {
        return Ok(q.iter().map(|&v| (v - zero[0]) as f32 * scale[0]).collect());
    }
    let rank = dims.len() as i64;
    let axis = if axis < 0 { axis + rank } else { axis };
    ensure!((0..rank).contains(&axis), "axis {axis} out of range for rank {rank}");
    let axis = axis as usize;
    // Elements after `axis` form the inner stride.
    let inner: usize = dims[axis + 1..].iter().product();
    let dim = dims[axis];
    let outer: usize = dims[..axis].iter().product();
    let mut out = Vec::with_capacity(n);
    if block_size <= 0 {
        ensure!(scale.len() == dim, "per-axis scale has {} values for axis size {dim}", scale.len());
        for o in 0..outer {
            for a in 0..dim {
                for i in 0..inner {
                    let v = q[(o * dim + a) * inner + i];
                    out.push((v - zero[a]) as f32 * scale[a]);
                }
            }
        }
        return Ok(out);
    }
    let bs = block_size as usize;
    let blocks = dim.div_ceil(bs);
    let mut expected = dims.to_vec();
    expected[axis] = blocks;
    ensure!(scale_dims == expected.as_slice(), "blocked scale has shape {scale_dims:?}, expected {expected:?}");
    for o in 0..outer {
        for a in 0..dim {
            for i in 0..inner {
                let v = q[(o * dim + a) * inner + i];
                let s = (o * blocks + a / bs) * inner + i;
                out.push((v - zero[s]) as f32 * scale[s]);
            }
        }
    }
    Ok(out)
}

fn reshape_node(node: &NodeProto, consts: &HashMap<String, TensorProto>) -> Result<TensorProto> {
    ensure!(node.input.len() == 2, "Reshape {} takes two inputs", node.name);
    let data = &consts[&node.input[0]];
    let shape = i64_values(&consts[&node.input[1]])?;
    let allow_zero = attr_int(node, "allowzero").unwrap_or(0) != 0;
    let dims = reshaped_dims(&dims_usize(data)?, &shape, allow_zero)
        .with_context(|| format!("folding Reshape {}", node.name))?;
    let mut t = data.clone();
    t.dims = dims.iter().map(|&d| d as i64).collect();
    Ok(t)
}

/// The output shape of ONNX `Reshape`: 0 copies the input dimension (unless
/// `allow_zero`), one -1 is inferred from the element count.
pub fn reshaped_dims(input: &[usize], shape: &[i64], allow_zero: bool) -> Result<Vec<usize>> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(shape.len());
    let mut infer = None;
    for (i, &s) in shape.iter().enumerate() {
        match s {
            -1 => {
                ensure!(infer.is_none(), "more than one -1 in shape {shape:?}");
                infer = Some(i);
                out.push(1);
            }
            0 if !allow_zero => out.push(*input.get(i).context("0 refers past the input rank")?),
            s if s >= 0 => out.push(s as usize),
            s => bail!("invalid dimension {s} in shape {shape:?}"),
        }
    }
    if let Some(i) = infer {
        let known: usize = out.iter().product();
        ensure!(known > 0 && total.is_multiple_of(known), "cannot infer -1 in {shape:?} for {total} values");
        out[i] = total / known;
    }
    ensure!(out.iter().product::<usize>() == total, "shape {shape:?} does not hold {total} values");
    Ok(out)
}

/// Folds every `BatchNormalization` that directly follows a `Conv` (whose
/// output nothing else reads) into the convolution's weights and bias:
/// `W' = W · γ/√(σ²+ε)` per output channel, `b' = (b − μ) · γ/√(σ²+ε) + β`.
/// Returns how many were folded.
pub fn fold_batchnorm_into_conv(model: &mut ModelProto) -> Result<usize> {
    let graph = model.graph.as_mut().context("the model has no graph")?;
    let mut readers: HashMap<String, usize> = HashMap::new();
    for n in &graph.node {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            *readers.entry(i.clone()).or_default() += 1;
        }
    }
    for o in &graph.output {
        *readers.entry(o.name.clone()).or_default() += 1;
    }
    let mut inits: HashMap<String, usize> =
        graph.initializer.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
    let producer: HashMap<String, usize> =
        graph.node.iter().enumerate().flat_map(|(i, n)| n.output.iter().map(move |o| (o.clone(), i))).collect();
    let mut remove = HashSet::new();
    let mut folded = 0;
    for bn_index in 0..graph.node.len() {
        let bn = &graph.node[bn_index];
        if bn.op_type != "BatchNormalization" || bn.input.len() != 5 || bn.output.len() != 1 {
            continue;
        }
        let Some(&conv_index) = producer.get(&bn.input[0]) else { continue };
        let conv = &graph.node[conv_index];
        if conv.op_type != "Conv" || readers.get(&bn.input[0]) != Some(&1) || conv.input.len() < 2 {
            continue;
        }
        let get = |name: &str| inits.get(name).map(|&i| &graph.initializer[i]);
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
        inits.insert(w_name.clone(), graph.initializer.len() - 1);
        graph.initializer.push(float_tensor(&b_name, &[out_channels], &bias));
        inits.insert(b_name.clone(), graph.initializer.len() - 1);
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

/// Makes `Max(z, slope · z)` usable for a PRelu with slopes above 1, whose
/// general form costs tract several passes over the tensor. For channels
/// with slope `a > 1`, `-PRelu(x) = Max(-x, a · (-x))`; so when `x` comes
/// from a Conv read by nothing else and the PRelu's output feeds only Convs,
/// those channels are negated in the producing Conv (weights and bias), the
/// PRelu becomes `Max(z, a · z)`, and the consumers' weights for those input
/// channels are negated back (for a kept integer convolution, whose int8
/// values cannot change sign in place, by listing them in its
/// [`NEGATED_INPUTS`]). All weights must be constants read by that node
/// alone. Runs after BatchNormalization folding; returns how many
/// PRelus were rewritten.
pub fn fold_prelu_signs(model: &mut ModelProto) -> Result<usize> {
    let graph = model.graph.as_mut().context("the model has no graph")?;
    let mut readers: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, n) in graph.node.iter().enumerate() {
        for name in n.input.iter().filter(|x| !x.is_empty()) {
            readers.entry(name.clone()).or_default().push(i);
        }
    }
    let outputs: HashSet<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let producer: HashMap<String, usize> =
        graph.node.iter().enumerate().flat_map(|(i, n)| n.output.iter().map(move |o| (o.clone(), i))).collect();
    let inits: HashMap<String, usize> =
        graph.initializer.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
    // A constant read by exactly one node input.
    let private = |name: &str| {
        inits.get(name).copied().filter(|_| readers.get(name).is_some_and(|r| r.len() == 1) && !outputs.contains(name))
    };
    let mut replaced: HashMap<usize, [NodeProto; 2]> = HashMap::new();
    for p in 0..graph.node.len() {
        if graph.node[p].op_type != "PRelu" {
            continue;
        }
        // A copy: the consumers may be changed in place below.
        let n = graph.node[p].clone();
        if n.input.len() != 2 || n.output.len() != 1 {
            continue;
        }
        let (x, y) = (&n.input[0], &n.output[0]);
        let Some(slope) = inits.get(&n.input[1]).map(|&i| &graph.initializer[i]) else { continue };
        let slopes = float_values(slope)?;
        if slopes.iter().all(|a| *a <= 1.0) || outputs.contains(x) || outputs.contains(y) {
            continue;
        }
        let Some(&c) = producer.get(x) else { continue };
        let conv = &graph.node[c];
        if conv.op_type != "Conv" || readers.get(x).map(Vec::as_slice) != Some(&[p]) || conv.input.len() < 2 {
            continue;
        }
        let Some(w1) = private(&conv.input[1]) else { continue };
        let b1 = match conv.input.get(2).filter(|b| !b.is_empty()) {
            Some(b) => match private(b) {
                Some(i) => Some(i),
                None => continue,
            },
            None => None,
        };
        let w1_dims = dims_usize(&graph.initializer[w1])?;
        let channels = w1_dims.first().copied().unwrap_or(0);
        if slopes.len() != channels || channels == 0 {
            continue;
        }
        // Every reader of y: a Conv taking it as data input, with private
        // weights, or a kept integer convolution.
        let Some(consumers) = readers.get(y).filter(|r| !r.is_empty()) else { continue };
        let mut targets = Vec::new();
        let mut kept = Vec::new();
        for &k in consumers {
            let next = &graph.node[k];
            if next.op_type == QUANTIZED_CONV_OP && next.input.first() == Some(y) {
                if kept_depth(next)? != channels {
                    break;
                }
                kept.push(k);
                continue;
            }
            let group = attr_int(next, "group").unwrap_or(1).max(1) as usize;
            let ok = next.op_type == "Conv" && next.input.len() >= 2 && next.input[0] == *y && next.input[1] != *y;
            let Some(w2) = ok.then(|| private(&next.input[1])).flatten() else { break };
            let w2_dims = dims_usize(&graph.initializer[w2])?;
            if w2_dims.len() < 2 || w2_dims[1] * group != channels || w2_dims[0] % group != 0 {
                break;
            }
            targets.push((w2, w2_dims, group));
        }
        if targets.len() + kept.len() != consumers.len() {
            continue;
        }
        let flip: Vec<bool> = slopes.iter().map(|a| *a > 1.0).collect();
        // Negate the flipped output channels of the producer.
        let mut w = float_values(&graph.initializer[w1])?;
        let per = w.len() / channels;
        for (ch, _) in flip.iter().enumerate().filter(|(_, f)| **f) {
            w[ch * per..(ch + 1) * per].iter_mut().for_each(|v| *v = -*v);
        }
        let name = graph.initializer[w1].name.clone();
        graph.initializer[w1] = float_tensor(&name, &w1_dims, &w);
        if let Some(b1) = b1 {
            let mut b = float_values(&graph.initializer[b1])?;
            ensure!(b.len() == channels, "convolution bias of {} values for {channels} channels", b.len());
            b.iter_mut().zip(&flip).filter(|(_, f)| **f).for_each(|(v, _)| *v = -*v);
            let name = graph.initializer[b1].name.clone();
            graph.initializer[b1] = float_tensor(&name, &[channels], &b);
        }
        // Negate the consumers' weights for those input channels.
        for (w2, dims, group) in targets {
            let mut w = float_values(&graph.initializer[w2])?;
            let (outs, per_group_in) = (dims[0], dims[1]);
            let kernel = w.len() / (outs * per_group_in);
            for o in 0..outs {
                let g = o / (outs / group);
                for i in 0..per_group_in {
                    if flip[g * per_group_in + i] {
                        let at = (o * per_group_in + i) * kernel;
                        w[at..at + kernel].iter_mut().for_each(|v| *v = -*v);
                    }
                }
            }
            let name = graph.initializer[w2].name.clone();
            graph.initializer[w2] = float_tensor(&name, &dims, &w);
        }
        for k in kept {
            toggle_negated_inputs(&mut graph.node[k], &flip);
        }
        let scaled = format!("{}__prelu_scaled", if n.name.is_empty() { y } else { &n.name });
        let node = |op: &str, inputs: Vec<String>, output: String| NodeProto {
            op_type: op.into(),
            name: output.clone(),
            input: inputs,
            output: vec![output],
            ..Default::default()
        };
        replaced.insert(
            p,
            [
                node("Mul", vec![x.clone(), n.input[1].clone()], scaled.clone()),
                node("Max", vec![x.clone(), scaled], y.clone()),
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

/// The attribute of a kept integer convolution ([`QUANTIZED_CONV_OP`])
/// listing the input channels whose weights change sign when it is built.
pub const NEGATED_INPUTS: &str = "negated_inputs";

/// `AttributeProto.type` of a list of integers.
const ATTR_INTS: i32 = 7;

/// A kept integer convolution's int8 weights (`q`, `rows x depth`).
fn kept_weights(node: &NodeProto) -> Option<&TensorProto> {
    node.attribute.iter().find(|a| a.name == "q").and_then(|a| a.t.as_ref())
}

/// Input channels of a kept integer convolution.
fn kept_depth(node: &NodeProto) -> Result<usize> {
    let q = kept_weights(node).with_context(|| format!("{QUANTIZED_CONV_OP} without attribute q"))?;
    Ok(dims_usize(q)?.get(1).copied().unwrap_or(0))
}

/// Adds the channels `flip` marks to a kept convolution's
/// [`NEGATED_INPUTS`] (or takes them out: negated twice is unchanged).
fn toggle_negated_inputs(node: &mut NodeProto, flip: &[bool]) {
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

/// Rewrites every `PRelu(x, slope)` into ops tract runs much faster than its
/// own PRelu lowering (compare, multiply, select): `Max(x, slope · x)` when
/// every slope is at most 1 (then the larger of the two is exactly PRelu),
/// otherwise `Relu(x) + slope · Min(x, 0)`. Returns how many were rewritten.
pub fn rewrite_prelu(model: &mut ModelProto) -> Result<usize> {
    let graph = model.graph.as_mut().context("the model has no graph")?;
    let zero = "__prelu_zero".to_string();
    let slopes_at_most_one: HashSet<String> = graph
        .initializer
        .iter()
        .filter(|t| t.data_type == dtype::FLOAT && float_values(t).is_ok_and(|v| v.iter().all(|a| *a <= 1.0)))
        .map(|t| t.name.clone())
        .collect();
    let mut needs_zero = false;
    let mut nodes = Vec::with_capacity(graph.node.len());
    let mut count = 0;
    for n in graph.node.drain(..) {
        if n.op_type != "PRelu" || n.input.len() != 2 || n.output.len() != 1 {
            nodes.push(n);
            continue;
        }
        let (x, slope, out) = (n.input[0].clone(), n.input[1].clone(), n.output[0].clone());
        let name = if n.name.is_empty() { out.clone() } else { n.name.clone() };
        let part = |s: &str| format!("{name}__prelu_{s}");
        let node = |op: &str, inputs: Vec<String>, output: String| NodeProto {
            op_type: op.into(),
            name: output.clone(),
            input: inputs,
            output: vec![output],
            ..Default::default()
        };
        if slopes_at_most_one.contains(&slope) {
            nodes.push(node("Mul", vec![x.clone(), slope], part("scaled")));
            nodes.push(node("Max", vec![x, part("scaled")], out));
        } else {
            nodes.push(node("Relu", vec![x.clone()], part("pos")));
            nodes.push(node("Min", vec![x, zero.clone()], part("neg")));
            nodes.push(node("Mul", vec![part("neg"), slope], part("scaled")));
            nodes.push(node("Add", vec![part("pos"), part("scaled")], out));
            needs_zero = true;
        }
        count += 1;
    }
    graph.node = nodes;
    if needs_zero && !graph.initializer.iter().any(|t| t.name == zero) {
        graph.initializer.push(float_tensor(&zero, &[], &[0.0]));
    }
    Ok(count)
}

/// Prepares a rewritten model for a runtime that takes any input size (ONNX
/// Runtime): graph inputs that merely shadow initializers (old exporters list
/// weights as inputs, which keeps ONNX Runtime from treating them as
/// constants) are dropped, the first input's height and width become
/// symbolic, and the declared shapes of outputs and intermediate values
/// (fixed at export, 640x640 for YuNet) are cleared.
pub fn free_input_shape(model: &mut ModelProto) -> Result<()> {
    use tract_onnx::pb::tensor_shape_proto::dimension::Value as Dim;
    use tract_onnx::pb::type_proto::Value as Type;
    let graph = model.graph.as_mut().context("the model has no graph")?;
    let weights: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<_> = graph.input.drain(..).filter(|i| !weights.contains(i.name.as_str())).collect();
    graph.input = inputs;
    ensure!(!graph.input.is_empty(), "the model has no data input");
    if let Some(Type::TensorType(t)) = graph.input[0].r#type.as_mut().and_then(|t| t.value.as_mut())
        && let Some(shape) = t.shape.as_mut()
    {
        for (i, d) in shape.dim.iter_mut().enumerate().skip(2) {
            d.value = Some(Dim::DimParam(format!("visage_dim{i}")));
        }
    }
    graph.value_info.clear();
    for o in &mut graph.output {
        if let Some(Type::TensorType(t)) = o.r#type.as_mut().and_then(|t| t.value.as_mut()) {
            t.shape = None;
        }
    }
    Ok(())
}

/// The ONNX operator type of a 1x1 convolution kept block-quantized for
/// visage's integer kernel (`kernels::quantized_conv`), which the passes
/// here may meet after it.
pub const QUANTIZED_CONV_OP: &str = "VisageQuantizedConv";

/// Rewrites `Mul(x, a)` with `x` the output of a 2-D `Conv` (C channels) and
/// `a` a per-channel constant of shape `[C, 1, 1]` into a depthwise 1x1
/// `Conv` with weights `a`: tract runs such a broadcast multiply several
/// times slower than a depthwise convolution (SFace's first PRelu scale:
/// 1.6 ms as a Mul). Returns how many were rewritten.
pub fn channel_muls_to_depthwise(model: &mut ModelProto) -> Result<usize> {
    let graph = model.graph.as_mut().context("the model has no graph")?;
    let producer: HashMap<String, usize> =
        graph.node.iter().enumerate().flat_map(|(i, n)| n.output.iter().map(move |o| (o.clone(), i))).collect();
    let inits: HashMap<String, usize> =
        graph.initializer.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
    let mut new_weights = Vec::new();
    let mut count = 0;
    for k in 0..graph.node.len() {
        let n = &graph.node[k];
        if n.op_type != "Mul" || n.input.len() != 2 || n.output.len() != 1 {
            continue;
        }
        let Some(conv) = producer.get(&n.input[0]).map(|&i| &graph.node[i]) else { continue };
        // The producer's output channels (NCHW): the first axis of a 2-D Conv's
        // weights [O, I, h, w], or of a kept quantized 1x1 convolution's `q`
        // [O, I].
        let weights = match conv.op_type.as_str() {
            "Conv" => conv.input.get(1).and_then(|w| inits.get(w)).map(|&i| (&graph.initializer[i], 4)),
            QUANTIZED_CONV_OP => kept_weights(conv).map(|q| (q, 2)),
            _ => None,
        };
        let Some((weights, rank)) = weights else { continue };
        let w_dims = dims_usize(weights)?;
        let Some(a) = inits.get(&n.input[1]).map(|&i| &graph.initializer[i]) else { continue };
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

/// Drops initializers and graph inputs that nothing reads.
fn drop_unused(graph: &mut GraphProto) -> (usize, usize) {
    let used = used_names(graph);
    let (i0, n0) = (graph.initializer.len(), graph.input.len());
    graph.initializer.retain(|t| used.contains(&t.name));
    graph.input.retain(|i| used.contains(&i.name));
    (i0 - graph.initializer.len(), n0 - graph.input.len())
}

/// Small ONNX graphs for tests.
#[cfg(test)]
pub(crate) mod test_graph {
    use super::dtype;
    use tract_onnx::pb::{AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto};

    pub fn attr(name: &str, i: i64) -> AttributeProto {
        AttributeProto { name: name.into(), i, r#type: 2, ..Default::default() }
    }

    pub fn tensor(name: &str, dims: &[i64], data_type: i32, raw: Vec<u8>) -> TensorProto {
        TensorProto { name: name.into(), dims: dims.to_vec(), data_type, raw_data: raw, ..Default::default() }
    }

    pub fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            name: output.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute,
            ..Default::default()
        }
    }

    pub fn value(name: &str, dims: &[i64]) -> tract_onnx::pb::ValueInfoProto {
        use tract_onnx::pb::{TensorShapeProto, TypeProto, tensor_shape_proto, type_proto};
        let dim = dims
            .iter()
            .map(|&d| tensor_shape_proto::Dimension {
                value: Some(tensor_shape_proto::dimension::Value::DimValue(d)),
                ..Default::default()
            })
            .collect();
        tract_onnx::pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: dtype::FLOAT,
                    shape: Some(TensorShapeProto { dim }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub fn opset21(graph: GraphProto) -> ModelProto {
        ModelProto {
            ir_version: 8,
            opset_import: vec![tract_onnx::pb::OperatorSetIdProto { domain: String::new(), version: 21 }],
            graph: Some(graph),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_graph::*;
    use super::*;

    #[test]
    fn blocked_dequantize_repeats_scale_and_zero_point_along_axis() {
        // 2x5, blocks of 2 along axis 1: blocks [0,1] [2,3] [4] (partial)
        let q = [1, 2, 3, 4, 5, -1, -2, -3, -4, -5];
        let scale = [1.0, 10.0, 100.0, 0.5, 0.25, 2.0];
        let zero = [0, 1, 2, 0, -1, 1];
        let out = dequantize(&q, &[2, 5], &scale, &[2, 3], &zero, 1, 2).unwrap();
        let expected = [
            1.0, 2.0, 20.0, 30.0, 300.0, // row 0
            -0.5, -1.0, -0.5, -0.75, -12.0, // row 1
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn blocked_dequantize_along_axis_zero_with_single_scale_block() {
        // A 1-D tensor of 3 with block 64: one block, one scale.
        let out = dequantize(&[3, -3, 0], &[3], &[0.5], &[1], &[1], 0, 64).unwrap();
        assert_eq!(out, [1.0, -2.0, -0.5]);
        // Two blocks of 2 along axis 0 of a 3x2 tensor (inner stride 2).
        let out = dequantize(&[1, 2, 3, 4, 5, 6], &[3, 2], &[1.0, 2.0, 3.0, 4.0], &[2, 2], &[0; 4], 0, 2).unwrap();
        assert_eq!(out, [1.0, 4.0, 3.0, 8.0, 15.0, 24.0]);
    }

    #[test]
    fn per_axis_and_per_tensor_dequantize() {
        let out = dequantize(&[1, 2, 3, 4], &[2, 2], &[1.0, 3.0], &[2], &[0, 1], 0, 0).unwrap();
        assert_eq!(out, [1.0, 2.0, 6.0, 9.0]);
        let out = dequantize(&[1, 2], &[2], &[2.0], &[], &[1], 1, 0).unwrap();
        assert_eq!(out, [0.0, 2.0]);
    }

    #[test]
    fn dequantize_rejects_mismatched_scale_shape() {
        assert!(dequantize(&[1, 2, 3, 4], &[2, 2], &[1.0, 1.0, 1.0], &[3, 1], &[0; 3], 1, 2).is_err());
    }

    /// x [1,4] · W, with W a blocked-int8 constant [4,2] stored as [8] and reshaped.
    fn tiny_quantized_model() -> ModelProto {
        let q: Vec<u8> = [1i8, -2, 3, 4, -5, 6, 7, -8].iter().map(|&v| v as u8).collect();
        let scale: Vec<u8> = [0.5f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let zero: Vec<u8> = vec![1, 0];
        let shape: Vec<u8> = [4i64, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
        let graph = GraphProto {
            node: vec![
                node("DequantizeLinear", &["wq", "ws", "wz"], "wf", vec![attr("axis", 0), attr("block_size", 4)]),
                node("Reshape", &["wf", "wshape"], "w", vec![]),
                node("MatMul", &["x", "w"], "y", vec![]),
            ],
            initializer: vec![
                tensor("wq", &[8], dtype::INT8, q),
                tensor("ws", &[2], dtype::FLOAT, scale),
                tensor("wz", &[2], dtype::INT8, zero),
                tensor("wshape", &[2], dtype::INT64, shape),
            ],
            input: vec![value("x", &[1, 4]), value("stale_weight", &[3, 3])],
            output: vec![value("y", &[1, 2])],
            ..Default::default()
        };
        opset21(graph)
    }

    #[test]
    fn a_folded_model_runs_in_tract_with_the_dequantized_weights() {
        use tract_onnx::prelude::*;
        let mut model = tiny_quantized_model();
        let report = fold_constants(&mut model).unwrap();
        assert_eq!(
            report,
            // wq, ws, wz, wshape and the intermediate wf are no longer read.
            RewriteReport { dequantize_folded: 1, reshape_folded: 1, inputs_dropped: 1, initializers_dropped: 5 }
        );
        // W = [(1-1)*.5, (-2-1)*.5, (3-1)*.5, (4-1)*.5, -5*2, 6*2, 7*2, -8*2] as 4x2
        let w = [0.0f32, -1.5, 1.0, 1.5, -10.0, 12.0, 14.0, -16.0];
        let x = [1.0f32, 2.0, 3.0, 4.0];
        let expected: Vec<f32> = (0..2).map(|j| (0..4).map(|i| x[i] * w[i * 2 + j]).sum()).collect();
        let plan = tract_onnx::onnx()
            .model_for_proto_model(&model)
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        let out = plan.run(tvec![tract_ndarray::arr2(&[x]).into_tensor().into()]).unwrap();
        let got = out[0].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec();
        assert_eq!(got, expected);
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// x [1,2,3,3] -> Conv 1x1 (no bias) -> BatchNormalization -> PRelu -> y
    fn conv_bn_prelu_model() -> ModelProto {
        let mut eps = attr("epsilon", 0);
        eps.r#type = 1;
        eps.f = 1e-3;
        let graph = GraphProto {
            node: vec![
                node("Conv", &["x", "w"], "c", vec![]),
                node("BatchNormalization", &["c", "gamma", "beta", "mean", "var"], "b", vec![eps]),
                node("PRelu", &["b", "slope"], "y", vec![]),
            ],
            initializer: vec![
                tensor("w", &[2, 2, 1, 1], dtype::FLOAT, f32s(&[0.5, -1.0, 2.0, 0.25])),
                tensor("gamma", &[2], dtype::FLOAT, f32s(&[1.5, 0.5])),
                tensor("beta", &[2], dtype::FLOAT, f32s(&[-0.2, 0.3])),
                tensor("mean", &[2], dtype::FLOAT, f32s(&[0.1, -0.4])),
                tensor("var", &[2], dtype::FLOAT, f32s(&[2.0, 0.5])),
                tensor("slope", &[2, 1, 1], dtype::FLOAT, f32s(&[0.25, -0.1])),
            ],
            input: vec![value("x", &[1, 2, 3, 3])],
            output: vec![value("y", &[1, 2, 3, 3])],
            ..Default::default()
        };
        opset21(graph)
    }

    fn run(model: &ModelProto, x: &[f32]) -> Vec<f32> {
        use tract_onnx::prelude::*;
        let plan =
            tract_onnx::onnx().model_for_proto_model(model).unwrap().into_optimized().unwrap().into_runnable().unwrap();
        let input = tract_ndarray::Array4::from_shape_vec((1, 2, 3, 3), x.to_vec()).unwrap().into_tensor();
        let out = plan.run(tvec![input.into()]).unwrap();
        out[0].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec()
    }

    /// 18 values for a [1, 2, 3, 3] input, negative and positive.
    fn sample_input() -> Vec<f32> {
        (0..18).map(|i| (i as f32 - 9.0) * 0.37).collect()
    }

    fn op_types(model: &ModelProto) -> Vec<&str> {
        model.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.as_str()).collect()
    }

    #[test]
    fn batchnorm_folding_and_prelu_rewrite_keep_the_outputs() {
        let original = conv_bn_prelu_model();
        let x = sample_input();
        let expected = run(&original, &x);
        let mut rewritten = original.clone();
        assert_eq!(fold_batchnorm_into_conv(&mut rewritten).unwrap(), 1);
        assert_eq!(rewrite_prelu(&mut rewritten).unwrap(), 1);
        assert_eq!(op_types(&rewritten), ["Conv", "Mul", "Max"]);
        let got = run(&rewritten, &x);
        // Negative inputs exercise both slopes; positive pass straight through.
        assert!(expected.iter().any(|v| *v < 0.0) && expected.iter().any(|v| *v > 0.0));
        for (a, b) in got.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-5, "{got:?} vs {expected:?}");
        }
    }

    #[test]
    fn prelu_with_a_slope_above_one_uses_the_general_form() {
        let mut original = conv_bn_prelu_model();
        let g = original.graph.as_mut().unwrap();
        let slope = g.initializer.iter_mut().find(|t| t.name == "slope").unwrap();
        slope.raw_data = f32s(&[1.5, -0.1]);
        let x = sample_input();
        let expected = run(&original, &x);
        let mut rewritten = original.clone();
        assert_eq!(rewrite_prelu(&mut rewritten).unwrap(), 1);
        assert_eq!(op_types(&rewritten), ["Conv", "BatchNormalization", "Relu", "Min", "Mul", "Add"]);
        for (a, b) in run(&rewritten, &x).iter().zip(&expected) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    /// x [1,2,3,3] -> Conv 1x1 (bias) -> PRelu (slopes 0.25 and 2.5) -> Conv 3x3
    /// (pad 1) and a depthwise Conv 1x1 -> Add -> y
    fn conv_prelu_conv_model() -> ModelProto {
        let mut pads = attr("pads", 0);
        pads.r#type = 7;
        pads.ints = vec![1, 1, 1, 1];
        let graph = GraphProto {
            node: vec![
                node("Conv", &["x", "w1", "b1"], "c", vec![]),
                node("PRelu", &["c", "slope"], "p", vec![]),
                node("Conv", &["p", "w2"], "d", vec![pads]),
                node("Conv", &["p", "w3"], "e", vec![attr("group", 2)]),
                node("Add", &["d", "e"], "y", vec![]),
            ],
            initializer: vec![
                tensor("w1", &[2, 2, 1, 1], dtype::FLOAT, f32s(&[0.5, -1.0, 2.0, 0.25])),
                tensor("b1", &[2], dtype::FLOAT, f32s(&[0.1, -0.3])),
                tensor("slope", &[2, 1, 1], dtype::FLOAT, f32s(&[0.25, 2.5])),
                tensor(
                    "w2",
                    &[2, 2, 3, 3],
                    dtype::FLOAT,
                    f32s(&(0..36).map(|i| (i as f32 * 0.7).sin()).collect::<Vec<_>>()),
                ),
                tensor("w3", &[2, 1, 1, 1], dtype::FLOAT, f32s(&[1.5, -0.75])),
            ],
            input: vec![value("x", &[1, 2, 3, 3])],
            output: vec![value("y", &[1, 2, 3, 3])],
            ..Default::default()
        };
        opset21(graph)
    }

    #[test]
    fn prelu_sign_folding_keeps_the_outputs() {
        let original = conv_prelu_conv_model();
        let x = sample_input();
        let expected = run(&original, &x);
        let mut rewritten = original.clone();
        assert_eq!(fold_prelu_signs(&mut rewritten).unwrap(), 1);
        assert_eq!(rewrite_prelu(&mut rewritten).unwrap(), 0);
        assert_eq!(op_types(&rewritten), ["Conv", "Mul", "Max", "Conv", "Conv", "Add"]);
        let got = run(&rewritten, &x);
        for (a, b) in got.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-4, "{got:?} vs {expected:?}");
        }
        // The scale multiply as a depthwise convolution gives the same outputs.
        assert_eq!(channel_muls_to_depthwise(&mut rewritten).unwrap(), 1);
        assert_eq!(op_types(&rewritten), ["Conv", "Conv", "Max", "Conv", "Conv", "Add"]);
        for (a, b) in run(&rewritten, &x).iter().zip(&expected) {
            assert!((a - b).abs() < 1e-4);
        }
        // Not applicable when the PRelu output is also read by something else.
        let mut shared = original.clone();
        shared.graph.as_mut().unwrap().output.push(value("p", &[1, 2, 3, 3]));
        assert_eq!(fold_prelu_signs(&mut shared).unwrap(), 0);
    }

    #[test]
    fn batchnorm_is_not_folded_when_the_conv_output_has_other_readers() {
        let mut model = conv_bn_prelu_model();
        let g = model.graph.as_mut().unwrap();
        g.output.push(value("c", &[1, 2, 3, 3]));
        assert_eq!(fold_batchnorm_into_conv(&mut model).unwrap(), 0);
    }

    #[test]
    fn reshape_handles_zero_and_minus_one() {
        assert_eq!(reshaped_dims(&[2, 3, 4], &[0, -1], false).unwrap(), vec![2, 12]);
        assert_eq!(reshaped_dims(&[24], &[4, 3, 2, 1], false).unwrap(), vec![4, 3, 2, 1]);
        assert!(reshaped_dims(&[24], &[5, -1], false).is_err());
        assert!(reshaped_dims(&[24], &[-1, -1], false).is_err());
    }
}
