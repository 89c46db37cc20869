//! Block-quantized 1x1 convolutions computed in integers ([`qpointwise`])
//! instead of being folded to f32 at load.
//!
//! Before the constants are folded, [`keep_quantized_convs`] turns each ONNX
//! `Conv(x, DequantizeLinear(q, scale, zero_point))` (possibly through a
//! `Reshape` of the weights) that is a plain 1x1 convolution with blocks
//! along its input channels, together with the `BatchNormalization` that
//! reads it alone, into one `VisageQuantizedConv` node: the normalisation's
//! per-channel factor goes into the block scales, its shift into the bias,
//! and `q` and the zero points stay the file's own. [`register`] teaches
//! tract's ONNX reader that node; `fuse` later takes the PReLU that follows
//! as its epilogue. Only the tract backend with visage's kernels on a CPU
//! with AVX2 reads such a graph; ONNX Runtime gets the folded one.
//!
//! Convolutions of fewer than [`min_depth`] input channels are left to the
//! f32 kernels: on AVX2 without VNNI, quantizing the input costs more than
//! the integer products save below 64 (`gemm_probe`: 0.92x on SFace's
//! 32-channel layer); with AVX-512 VNNI even YuNet's 16-channel layers gain
//! (`op_profile` on Zen 4: YuNet at 640x640 16.7-18.5 ms with 64, 13.3-13.4
//! with 16).
use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::{ModelProto, NodeProto, TensorProto};
use tract_onnx::tract_hir::internal::*;

use super::conv;
use super::ops::{Epilogue, map_images};
use super::qpointwise::QuantizedPointwise;
use super::quantized_gemm::{KeptConstants, attr, bias_values};
use crate::onnx_rewrite::{
    NEGATED_INPUTS, QUANTIZED_CONV_OP, attr_int, dims_usize, dtype, float_values, i64_values, int_values, used_names,
};

/// The ONNX operator type of a kept convolution.
pub const OP_TYPE: &str = QUANTIZED_CONV_OP;

/// The fewest input channels worth the integer path: 16 where AVX-512
/// VNNI exists, 64 elsewhere (measured, see above).
pub fn min_depth() -> usize {
    if super::qpointwise::vnni() { 16 } else { 64 }
}

/// Replaces every 1x1 `Conv` on a blocked `DequantizeLinear` of constants
/// (and the `BatchNormalization` after it) by a `VisageQuantizedConv` node,
/// and drops the nodes that nothing reads any more. Returns how many were
/// replaced.
pub fn keep_quantized_convs(model: &mut ModelProto) -> Result<usize> {
    let graph = model.graph.as_mut().context("the model has no graph")?;
    let inits: HashMap<&str, &TensorProto> = graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    let producers: HashMap<&str, &NodeProto> =
        graph.node.iter().flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n))).collect();
    let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in graph.node.iter().enumerate() {
        for input in &n.input {
            readers.entry(input.as_str()).or_default().push(i);
        }
    }
    let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let mut replaced: HashMap<usize, NodeProto> = HashMap::new();
    let mut removed = Vec::new();
    for (i, node) in graph.node.iter().enumerate() {
        if node.op_type != "Conv" || node.output.len() != 1 {
            continue;
        }
        // The normalisation reading the convolution alone, if any.
        let out = node.output[0].as_str();
        let bn = match readers.get(out).map(Vec::as_slice) {
            Some(&[j]) if graph.node[j].op_type == "BatchNormalization" && !outputs.contains(&out) => Some(j),
            _ => None,
        };
        let bn_node = bn.map(|j| &graph.node[j]);
        let kept = quantized_conv(node, bn_node, &inits, &producers)
            .with_context(|| format!("keeping Conv {} quantized", node.name))?;
        if let Some(kept) = kept {
            match bn {
                Some(j) => {
                    replaced.insert(j, kept);
                    removed.push(i);
                }
                None => {
                    replaced.insert(i, kept);
                }
            }
        }
    }
    let count = replaced.len();
    let nodes = std::mem::take(&mut graph.node);
    for (i, n) in nodes.into_iter().enumerate() {
        if let Some(kept) = replaced.remove(&i) {
            graph.node.push(kept);
        } else if !removed.contains(&i) {
            graph.node.push(n);
        }
    }
    // Weights' DequantizeLinear and Reshape nodes nothing reads any more,
    // until none is left.
    loop {
        let read = used_names(graph);
        let before = graph.node.len();
        graph.node.retain(|n| {
            !matches!(n.op_type.as_str(), "DequantizeLinear" | "Reshape") || n.output.iter().any(|o| read.contains(o))
        });
        if graph.node.len() == before {
            break;
        }
    }
    Ok(count)
}

/// The `VisageQuantizedConv` node for `conv` (and `bn`, folded into it), or
/// `None` when it is not a plain 1x1 convolution on constant, blocked int8
/// weights along the input channels.
fn quantized_conv(
    conv: &NodeProto,
    bn: Option<&NodeProto>,
    inits: &HashMap<&str, &TensorProto>,
    producers: &HashMap<&str, &NodeProto>,
) -> Result<Option<NodeProto>> {
    let (Some(x), Some(w)) = (conv.input.first(), conv.input.get(1)) else { return Ok(None) };
    if !is_plain_pointwise(conv) {
        return Ok(None);
    }
    let Some(dq) = weights_dequantizer(w, inits, producers)? else { return Ok(None) };
    let constant = |i: usize| dq.input.get(i).filter(|n| !n.is_empty()).and_then(|n| inits.get(n.as_str()).copied());
    let (Some(q), Some(scale), Some(zero)) = (constant(0), constant(1), constant(2)) else { return Ok(None) };
    let dims = dims_usize(q)?;
    let (rows, depth) = match dims.as_slice() {
        &[o, i] | &[o, i, 1, 1] => (o, i),
        _ => return Ok(None),
    };
    let block = attr_int(dq, "block_size").unwrap_or(0);
    let axis = attr_int(dq, "axis").unwrap_or(1);
    if depth < min_depth()
        || block <= 0
        || block % 2 != 0
        || block > 256
        || (axis != 1 && axis != 1 - dims.len() as i64)
    {
        return Ok(None);
    }
    if q.data_type != dtype::INT8 || zero.data_type != dtype::INT8 {
        return Ok(None);
    }
    let (block, blocks) = (block as usize, depth.div_ceil(block as usize));
    if dims_usize(scale)?.iter().product::<usize>() != rows * blocks
        || dims_usize(zero)?.iter().product::<usize>() != rows * blocks
    {
        return Ok(None);
    }
    let Some(mut bias) = bias_values(conv, inits, producers, rows)? else { return Ok(None) };
    let mut scales = float_values(scale)?;
    let output = match bn {
        Some(bn) => match fold_batchnorm(bn, inits, blocks, &mut scales, &mut bias)? {
            Some(output) => output,
            None => return Ok(None),
        },
        None => conv.output[0].clone(),
    };
    let small = |t: &TensorProto| -> Result<Vec<i8>> { Ok(int_values(t)?.into_iter().map(|v| v as i8).collect()) };
    let kept = KeptConstants { dims: [rows, depth], block, q: small(q)?, scale: scales, zero: small(zero)?, bias };
    Ok(Some(kept.into_node(OP_TYPE, &conv.name, x, &output)))
}

/// A 1x1 convolution without groups, strides, dilations or padding.
fn is_plain_pointwise(conv: &NodeProto) -> bool {
    let ints = |name: &str| attr(conv, name).map(|a| a.ints.clone()).unwrap_or_default();
    attr_int(conv, "group").unwrap_or(1) == 1
        && ints("strides").iter().all(|&s| s == 1)
        && ints("dilations").iter().all(|&d| d == 1)
        && ints("pads").iter().all(|&p| p == 0)
        && ints("kernel_shape").iter().all(|&k| k == 1)
        && attr(conv, "auto_pad").is_none_or(|a| a.s.is_empty() || a.s == b"NOTSET")
}

/// The `DequantizeLinear` that makes the weights `w`, possibly through a
/// constant `Reshape` to `[O, I, 1, 1]`.
fn weights_dequantizer<'a>(
    w: &str,
    inits: &HashMap<&str, &TensorProto>,
    producers: &HashMap<&str, &'a NodeProto>,
) -> Result<Option<&'a NodeProto>> {
    let Some(mut producer) = producers.get(w).copied() else { return Ok(None) };
    if producer.op_type == "Reshape" {
        let Some(shape) = producer.input.get(1).and_then(|s| inits.get(s.as_str())) else { return Ok(None) };
        let shape = i64_values(shape)?;
        if shape.len() != 4 || shape[2..] != [1, 1] {
            return Ok(None);
        }
        let Some(p) = producer.input.first().and_then(|n| producers.get(n.as_str())) else { return Ok(None) };
        producer = p;
    }
    Ok((producer.op_type == "DequantizeLinear").then_some(producer))
}

/// Folds a `BatchNormalization` after the convolution into its per-block
/// scales and its bias: `y = factor (conv - mean) + shift`, `factor = gamma
/// / sqrt(var + eps)`. Returns the normalisation's output name, or None when
/// its parameters are not constants of one value per output row.
fn fold_batchnorm(
    bn: &NodeProto,
    inits: &HashMap<&str, &TensorProto>,
    blocks: usize,
    scales: &mut [f32],
    bias: &mut [f32],
) -> Result<Option<String>> {
    let rows = bias.len();
    let param = |i: usize| -> Result<Option<Vec<f32>>> {
        let Some(t) = bn.input.get(i).and_then(|n| inits.get(n.as_str())) else { return Ok(None) };
        let v = float_values(t)?;
        Ok((v.len() == rows).then_some(v))
    };
    let (Some(gamma), Some(beta), Some(mean), Some(var)) = (param(1)?, param(2)?, param(3)?, param(4)?) else {
        return Ok(None);
    };
    let eps = attr(bn, "epsilon").map_or(1e-5, |a| a.f);
    for r in 0..rows {
        let factor = gamma[r] / (var[r] + eps).sqrt();
        scales[r * blocks..][..blocks].iter_mut().for_each(|s| *s *= factor);
        bias[r] = factor * (bias[r] - mean[r]) + beta[r];
    }
    Ok(Some(bn.output.first().cloned().context("BatchNormalization without output")?))
}

/// Lets tract's ONNX reader build [`QuantizedConv`] from a kept node.
pub fn register(ops: &mut OnnxOpRegister) {
    ops.insert(OP_TYPE, build);
}

fn build(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let c = KeptConstants::read(node)?;
    let mut weights = QuantizedPointwise::new(c.dims, c.block, &c.q, &c.scale, &c.zero, &c.bias)?;
    if let Some(a) = attr(node, NEGATED_INPUTS) {
        let negated: Vec<usize> = a.ints.iter().map(|&c| usize::try_from(c)).collect::<Result<_, _>>()?;
        weights.negate_inputs(&negated)?;
    }
    Ok((expand(QuantizedConvNode(Arc::new(weights))), vec![]))
}

/// The node as tract's inference model sees it.
#[derive(Debug, Clone)]
struct QuantizedConvNode(Arc<QuantizedPointwise>);

impl Expansion for QuantizedConvNode {
    fn name(&self) -> StaticName {
        OP_TYPE.into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].datum_type, f32::datum_type())?;
        s.equals(&outputs[0].datum_type, f32::datum_type())?;
        s.equals(&inputs[0].rank, 4)?;
        s.equals(&outputs[0].rank, 4)?;
        s.equals(&inputs[0].shape[1], self.0.depth().to_dim())?;
        s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
        s.equals(&outputs[0].shape[1], self.0.rows().to_dim())?;
        s.equals(&outputs[0].shape[2], &inputs[0].shape[2])?;
        s.equals(&outputs[0].shape[3], &inputs[0].shape[3])?;
        Ok(())
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, QuantizedConv { weights: self.0.clone(), epilogue: None }, &[inputs[0]])
    }
}

/// A 1x1 convolution on NCHW f32 tensors with block-quantized int8 weights
/// ([`QuantizedPointwise`]), then an optional epilogue.
#[derive(Debug, Clone)]
pub struct QuantizedConv {
    pub weights: Arc<QuantizedPointwise>,
    pub epilogue: Option<Epilogue>,
}

impl PartialEq for QuantizedConv {
    fn eq(&self, other: &Self) -> bool {
        (Arc::ptr_eq(&self.weights, &other.weights) || self.weights == other.weights) && self.epilogue == other.epilogue
    }
}

impl Eq for QuantizedConv {}

impl Op for QuantizedConv {
    fn name(&self) -> StaticName {
        OP_TYPE.into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{:?} epilogue {}", self.weights, self.epilogue.is_some())])
    }

    op_as_typed_op!();
}

impl EvalOp for QuantizedConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape();
        let (depth, rows) = (self.weights.depth(), self.weights.rows());
        ensure!(shape.len() == 4 && shape[1] == depth, "{OP_TYPE} input {shape:?}, expected [n, {depth}, h, w]");
        let (h, w) = (shape[2], shape[3]);
        let act = self.epilogue.as_ref().map(Epilogue::view).transpose()?;
        let mut strips = Vec::new();
        let output = map_images(&input, [rows, h, w], |x, y| {
            self.weights.apply(x, h * w, y, &mut strips);
            if let Some(act) = act {
                conv::max_affine_in_place(y, h * w, act);
            }
        })?;
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for QuantizedConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let s = &inputs[0].shape;
        ensure!(s.rank() == 4, "{OP_TYPE} input of rank {}", s.rank());
        Ok(tvec!(f32::fact([s[0].clone(), self.weights.rows().to_dim(), s[2].clone(), s[3].clone()])))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_values as values;
    use crate::onnx_rewrite::fold_constants;
    use crate::onnx_rewrite::test_graph::{attr, node, opset21, tensor, value};
    use tract_onnx::pb::{AttributeProto, GraphProto};

    const O: usize = 7;
    const BLOCK: usize = 32;
    const H: usize = 2;
    const W: usize = 3;

    /// `y = BatchNormalization(Conv(x, Reshape(DequantizeLinear(q, s, z)), b))`
    /// on `depth` input channels, 1x1, with `strides`.
    fn model(depth: usize, strides: i64) -> ModelProto {
        let blocks = depth.div_ceil(BLOCK);
        let bytes =
            |n: usize, seed: u32| -> Vec<u8> { values(n, seed).iter().map(|v| (v * 127.0) as i8 as u8).collect() };
        let f32s = |v: Vec<f32>| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let o = O as i64;
        let mut conv = node("Conv", &["x", "w", "b"], "c", vec![]);
        conv.attribute.push(AttributeProto {
            name: "strides".into(),
            r#type: 7,
            ints: vec![strides; 2],
            ..Default::default()
        });
        let mut bn = node("BatchNormalization", &["c", "gamma", "beta", "mean", "var"], "y", vec![]);
        bn.attribute.push(AttributeProto { name: "epsilon".into(), r#type: 1, f: 1e-3, ..Default::default() });
        let positive = |n: usize, seed: u32| f32s(values(n, seed).iter().map(|v| 0.5 + v.abs()).collect());
        let graph = GraphProto {
            node: vec![
                node(
                    "DequantizeLinear",
                    &["wq", "ws", "wz"],
                    "wd",
                    vec![attr("axis", 1), attr("block_size", BLOCK as i64)],
                ),
                node("Reshape", &["wd", "shape"], "w", vec![]),
                conv,
                bn,
            ],
            initializer: vec![
                tensor("wq", &[o, depth as i64], dtype::INT8, bytes(O * depth, 1)),
                // Scales that keep the products near the bias and the
                // normalisation's terms, so that each of them shows.
                tensor(
                    "ws",
                    &[o, blocks as i64],
                    dtype::FLOAT,
                    f32s(values(O * blocks, 2).iter().map(|v| 0.002 * (0.5 + v.abs())).collect()),
                ),
                tensor("wz", &[o, blocks as i64], dtype::INT8, bytes(O * blocks, 3)),
                tensor(
                    "shape",
                    &[4],
                    dtype::INT64,
                    [o, depth as i64, 1, 1].iter().flat_map(|v| v.to_le_bytes()).collect(),
                ),
                tensor("b", &[o], dtype::FLOAT, f32s(values(O, 4))),
                tensor("gamma", &[o], dtype::FLOAT, positive(O, 5)),
                tensor("beta", &[o], dtype::FLOAT, f32s(values(O, 6))),
                tensor("mean", &[o], dtype::FLOAT, f32s(values(O, 7))),
                // Variances near epsilon, so that it shows too.
                tensor("var", &[o], dtype::FLOAT, f32s(values(O, 8).iter().map(|v| 0.002 * (0.5 + v.abs())).collect())),
            ],
            input: vec![value("x", &[1, depth as i64, H as i64, W as i64])],
            output: vec![value("y", &[1, o, -1, -1])],
            ..Default::default()
        };
        opset21(graph)
    }

    fn run(model: &ModelProto, depth: usize) -> Vec<f32> {
        let mut onnx = tract_onnx::onnx();
        register(&mut onnx.op_register);
        let plan = onnx.model_for_proto_model(model).unwrap().into_optimized().unwrap().into_runnable().unwrap();
        let x = tract_ndarray::Array4::from_shape_vec((1, depth, H, W), values(depth * H * W, 9)).unwrap();
        let out = plan.run(tvec![x.into_tensor().into()]).unwrap();
        out[0].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec()
    }

    #[test]
    fn a_kept_convolution_gives_what_the_dequantized_one_gives() {
        let depth = 80; // two blocks and a partial third
        let mut folded = model(depth, 1);
        fold_constants(&mut folded).unwrap();
        let mut kept = model(depth, 1);
        assert_eq!(keep_quantized_convs(&mut kept).unwrap(), 1);
        let ops: Vec<&str> = kept.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, [OP_TYPE], "the weights' nodes and the normalisation went with the Conv");
        fold_constants(&mut kept).unwrap();
        let (expected, got) = (run(&folded, depth), run(&kept, depth));
        assert_eq!(got.len(), O * H * W);
        // The input is quantized to 16 bits: a relative error of about 1e-4.
        let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (a, b) in got.iter().zip(&expected) {
            assert!((a - b).abs() <= 1e-3 * scale, "{got:?} vs {expected:?}");
        }
    }

    #[test]
    fn a_prelu_before_a_kept_convolution_folds_its_signs_into_it() {
        use crate::onnx_rewrite::{fold_prelu_signs, rewrite_prelu};
        // x -> Conv 1x1 (f32) -> PRelu (slopes above 1 on some channels) -> model().
        let depth = 80;
        let mut m = model(depth, 1);
        let g = m.graph.as_mut().unwrap();
        let f32s = |v: Vec<f32>| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        for n in &mut g.node {
            n.input.iter_mut().filter(|i| *i == "x").for_each(|i| *i = "pr".into());
        }
        g.node.insert(0, node("Conv", &["x", "w0", "b0"], "c0", vec![]));
        g.node.insert(1, node("PRelu", &["c0", "slope"], "pr", vec![]));
        let slopes: Vec<f32> = (0..depth).map(|i| if i % 3 == 0 { 1.5 + (i % 5) as f32 } else { 0.25 }).collect();
        let d = depth as i64;
        g.initializer.push(tensor("w0", &[d, d, 1, 1], dtype::FLOAT, f32s(values(depth * depth, 10))));
        g.initializer.push(tensor("b0", &[d], dtype::FLOAT, f32s(values(depth, 11))));
        g.initializer.push(tensor("slope", &[d, 1, 1], dtype::FLOAT, f32s(slopes)));
        let mut folded = m.clone();
        fold_constants(&mut folded).unwrap();
        let mut kept = m;
        assert_eq!(keep_quantized_convs(&mut kept).unwrap(), 1);
        fold_constants(&mut kept).unwrap();
        assert_eq!(fold_prelu_signs(&mut kept).unwrap(), 1, "the kept node takes the signs back");
        assert_eq!(rewrite_prelu(&mut kept).unwrap(), 0, "no general PRelu is left");
        let (expected, got) = (run(&folded, depth), run(&kept, depth));
        assert_eq!(got.len(), O * H * W);
        let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (a, b) in got.iter().zip(&expected) {
            assert!((a - b).abs() <= 1e-3 * scale, "{got:?} vs {expected:?}");
        }
    }

    #[test]
    fn strided_or_shallow_convolutions_are_left_to_the_f32_path() {
        for (depth, strides) in [(80, 2), (min_depth() - 2, 1)] {
            let mut m = model(depth, strides);
            assert_eq!(keep_quantized_convs(&mut m).unwrap(), 0, "depth {depth}, strides {strides}");
            assert_eq!(m.graph.as_ref().unwrap().node.len(), 4);
        }
    }
}
