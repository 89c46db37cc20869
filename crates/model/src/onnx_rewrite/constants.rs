//! Folding the quantized constants: every constant `DequantizeLinear`
//! (blocked along an axis, per axis or per tensor) into an f32 initializer,
//! then the `Reshape`s that became constant, then whatever nothing reads.
use std::collections::HashMap;

use anyhow::{Context, Result, bail, ensure};
use tract_onnx::pb::{ModelProto, NodeProto, TensorProto};

use super::graph::{attr_int, dims_usize, used_names};
use super::tensor::{float_tensor, float_values, i64_values, int_values};

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
