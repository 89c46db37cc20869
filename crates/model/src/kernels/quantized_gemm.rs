//! Block-quantized fully connected layers kept as int8 ([`qgemv`]) instead
//! of being folded to f32 at load.
//!
//! Before the constants are folded, [`keep_quantized_gemms`] turns each
//! ONNX `Gemm(x, DequantizeLinear(q, scale, zero_point), bias)` whose
//! quantization is blocked along the input axis into one `VisageQuantizedGemm`
//! node that carries `q`, the scales, the zero points and the bias as tensor
//! attributes. [`register`] teaches tract's ONNX reader that node, which
//! becomes a [`QuantizedGemm`] operator. Only the tract backend with
//! visage's kernels reads such a graph; ONNX Runtime gets the folded one.
//!
//! tract would otherwise fold the batch normalisation that follows SFace's
//! last layer into its f32 weights, after which the int8 values can no
//! longer be recovered; as its own operator the layer stays quantized and the
//! normalisation stays an element-wise operator on 128 values.
use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::{AttributeProto, ModelProto, NodeProto, TensorProto};
use tract_onnx::tract_hir::internal::*;

use super::qgemv::QuantizedRows;
use crate::onnx_rewrite::{
    attr_int, dequantize_node, dims_usize, dtype, float_tensor, float_values, int_values, used_names,
};

/// The ONNX operator type of a kept layer.
pub const OP_TYPE: &str = "VisageQuantizedGemm";

/// `AttributeProto.AttributeType` codes used here.
const ATTR_INT: i32 = 2;
const ATTR_TENSOR: i32 = 4;

/// Replaces every `Gemm` on a blocked `DequantizeLinear` of constants by a
/// `VisageQuantizedGemm` node, and drops the `DequantizeLinear` nodes that
/// nothing reads any more. Other `Gemm`s are left alone. Returns how many
/// were replaced.
pub fn keep_quantized_gemms(model: &mut ModelProto) -> Result<usize> {
    let graph = model.graph.as_mut().context("the model has no graph")?;
    let inits: HashMap<&str, &TensorProto> = graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    let producers: HashMap<&str, &NodeProto> =
        graph.node.iter().flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n))).collect();
    let mut replacements = Vec::new();
    for (i, node) in graph.node.iter().enumerate() {
        if node.op_type == "Gemm" {
            let kept = quantized_gemm(node, &inits, &producers)
                .with_context(|| format!("keeping Gemm {} quantized", node.name))?;
            if let Some(kept) = kept {
                replacements.push((i, kept));
            }
        }
    }
    let count = replacements.len();
    for (i, node) in replacements {
        graph.node[i] = node;
    }
    let read = used_names(graph);
    graph.node.retain(|n| n.op_type != "DequantizeLinear" || n.output.iter().any(|o| read.contains(o)));
    Ok(count)
}

pub(super) fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

/// The `VisageQuantizedGemm` node for `node`, or `None` when it is not a
/// product with constant, blocked int8 weights along its input axis.
fn quantized_gemm(
    node: &NodeProto,
    inits: &HashMap<&str, &TensorProto>,
    producers: &HashMap<&str, &NodeProto>,
) -> Result<Option<NodeProto>> {
    let trans_b = attr_int(node, "transB").unwrap_or(0) != 0;
    let alpha = attr(node, "alpha").map_or(1.0, |a| a.f);
    let beta = attr(node, "beta").map_or(1.0, |a| a.f);
    let (Some(a), Some(b)) = (node.input.first(), node.input.get(1)) else { return Ok(None) };
    if attr_int(node, "transA").unwrap_or(0) != 0 {
        return Ok(None);
    }
    let Some(dq) = producers.get(b.as_str()).filter(|p| p.op_type == "DequantizeLinear") else { return Ok(None) };
    let constant = |i: usize| dq.input.get(i).filter(|n| !n.is_empty()).and_then(|n| inits.get(n.as_str()).copied());
    let (Some(q), Some(scale)) = (constant(0), constant(1)) else { return Ok(None) };
    let zero = constant(2);
    if dq.input.get(2).is_some_and(|n| !n.is_empty()) && zero.is_none() {
        return Ok(None);
    }
    let block = attr_int(dq, "block_size").unwrap_or(0);
    let axis = attr_int(dq, "axis").unwrap_or(1);
    let dims = dims_usize(q)?;
    // The blocks must run along the input (depth) axis of the weights.
    let depth_axis = if trans_b { 1 } else { 0 };
    if block <= 0 || dims.len() != 2 || (axis != depth_axis as i64 && axis != depth_axis as i64 - 2) {
        return Ok(None);
    }
    if !matches!(q.data_type, dtype::INT8 | dtype::UINT8) || zero.is_some_and(|z| z.data_type != q.data_type) {
        return Ok(None);
    }
    let block = block as usize;
    let (rows, depth) = if trans_b { (dims[0], dims[1]) } else { (dims[1], dims[0]) };
    let blocks = depth.div_ceil(block);
    let scale_dims = if trans_b { [rows, blocks] } else { [blocks, rows] };
    if dims_usize(scale)? != scale_dims {
        return Ok(None);
    }
    // Unsigned values are shifted by 128 with their zero points: the same
    // differences, as int8.
    let shift = if q.data_type == dtype::UINT8 { 128 } else { 0 };
    let q_values = int_values(q)?;
    let scales = float_values(scale)?;
    let zeros = zero.map(int_values).transpose()?.unwrap_or_else(|| vec![0; scales.len()]);
    // Row-major `rows x depth` and `rows x blocks`, whatever the file's order.
    let at = |r: usize, c: usize, cols: usize| if trans_b { r * cols + c } else { c * rows + r };
    let as_i8 = |v: i32| (v - shift) as i8;
    let q_rows: Vec<i8> = (0..rows * depth).map(|i| as_i8(q_values[at(i / depth, i % depth, depth)])).collect();
    let scale_rows: Vec<f32> = (0..rows * blocks).map(|i| alpha * scales[at(i / blocks, i % blocks, blocks)]).collect();
    let zero_rows: Vec<i8> = (0..rows * blocks).map(|i| as_i8(zeros[at(i / blocks, i % blocks, blocks)])).collect();
    let Some(bias) = bias_values(node, inits, producers, rows)? else { return Ok(None) };
    let bias: Vec<f32> = bias.iter().map(|v| beta * v).collect();

    let kept = KeptConstants { dims: [rows, depth], block, q: q_rows, scale: scale_rows, zero: zero_rows, bias };
    Ok(Some(kept.into_node(OP_TYPE, &node.name, a, &node.output[0])))
}

/// A tensor attribute of a kept node.
fn tensor_attr(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto { name: name.to_string(), r#type: ATTR_TENSOR, t: Some(t), ..Default::default() }
}

fn int8_tensor(dims: &[usize], values: &[i8]) -> TensorProto {
    TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: dtype::INT8,
        raw_data: values.iter().map(|&v| v as u8).collect(),
        ..Default::default()
    }
}

/// The `Gemm`'s (or `Conv`'s) bias as one value an output (zeros without
/// one), or `None` when it is not a constant of that shape.
pub(super) fn bias_values(
    node: &NodeProto,
    inits: &HashMap<&str, &TensorProto>,
    producers: &HashMap<&str, &NodeProto>,
    rows: usize,
) -> Result<Option<Vec<f32>>> {
    let Some(name) = node.input.get(2).filter(|n| !n.is_empty()) else { return Ok(Some(vec![0.0; rows])) };
    let tensor = if let Some(t) = inits.get(name.as_str()) {
        (*t).clone()
    } else if let Some(dq) = producers.get(name.as_str()).filter(|p| p.op_type == "DequantizeLinear") {
        let inputs: Option<HashMap<String, TensorProto>> = dq
            .input
            .iter()
            .filter(|n| !n.is_empty())
            .map(|n| inits.get(n.as_str()).map(|t| (n.clone(), (*t).clone())))
            .collect();
        let Some(inputs) = inputs else { return Ok(None) };
        dequantize_node(dq, &inputs)?
    } else {
        return Ok(None);
    };
    let values = float_values(&tensor)?;
    Ok(match values.len() {
        1 => Some(vec![values[0]; rows]),
        n if n == rows && dims_usize(&tensor)?.iter().filter(|&&d| d != 1).count() <= 1 => Some(values),
        _ => None,
    })
}

/// Lets tract's ONNX reader build [`QuantizedGemm`] from a kept node.
pub fn register(ops: &mut OnnxOpRegister) {
    ops.insert(OP_TYPE, build);
}

fn build(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let c = KeptConstants::read(node)?;
    let matrix = QuantizedRows::new(c.dims, c.block, c.q, &c.scale, &c.zero, c.bias)?;
    Ok((expand(QuantizedGemmNode(Arc::new(matrix))), vec![]))
}

/// The tensor attributes of a kept node (this module's or
/// `quantized_conv`'s): `q` as `rows x depth`, scales and zero points
/// `rows x blocks`, one bias a row.
pub(super) struct KeptConstants {
    pub dims: [usize; 2],
    pub block: usize,
    pub q: Vec<i8>,
    pub scale: Vec<f32>,
    pub zero: Vec<i8>,
    pub bias: Vec<f32>,
}

impl KeptConstants {
    /// The `op_type` node (domain `visage`) carrying these constants, reading
    /// `input` and writing `output`.
    pub fn into_node(self, op_type: &str, name: &str, input: &str, output: &str) -> NodeProto {
        let [rows, depth] = self.dims;
        let blocks = depth.div_ceil(self.block);
        NodeProto {
            name: name.to_string(),
            op_type: op_type.to_string(),
            domain: "visage".to_string(),
            input: vec![input.to_string()],
            output: vec![output.to_string()],
            attribute: vec![
                tensor_attr("q", int8_tensor(&[rows, depth], &self.q)),
                tensor_attr("scale", float_tensor("", &[rows, blocks], &self.scale)),
                tensor_attr("zero_point", int8_tensor(&[rows, blocks], &self.zero)),
                tensor_attr("bias", float_tensor("", &[rows], &self.bias)),
                AttributeProto {
                    name: "block_size".into(),
                    r#type: ATTR_INT,
                    i: self.block as i64,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    pub fn read(node: &NodeProto) -> Result<Self> {
        let op = &node.op_type;
        let tensor = |name: &str| {
            attr(node, name).and_then(|a| a.t.as_ref()).with_context(|| format!("{op} without attribute {name}"))
        };
        let (q, scale, zero, bias) = (tensor("q")?, tensor("scale")?, tensor("zero_point")?, tensor("bias")?);
        let block = attr_int(node, "block_size").context("no block_size")?;
        let dims = dims_usize(q)?;
        anyhow::ensure!(dims.len() == 2 && block > 0, "{op} with q of shape {dims:?} and blocks of {block}");
        let small = |t: &TensorProto| -> Result<Vec<i8>> { Ok(int_values(t)?.into_iter().map(|v| v as i8).collect()) };
        Ok(Self {
            dims: [dims[0], dims[1]],
            block: block as usize,
            q: small(q)?,
            scale: float_values(scale)?,
            zero: small(zero)?,
            bias: float_values(bias)?,
        })
    }
}

/// The node as tract's inference model sees it.
#[derive(Debug, Clone)]
struct QuantizedGemmNode(Arc<QuantizedRows>);

impl Expansion for QuantizedGemmNode {
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
        s.equals(&inputs[0].rank, 2)?;
        s.equals(&outputs[0].rank, 2)?;
        s.equals(&inputs[0].shape[1], self.0.depth().to_dim())?;
        s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
        s.equals(&outputs[0].shape[1], self.0.rows().to_dim())?;
        Ok(())
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, QuantizedGemm(self.0.clone()), &[inputs[0]])
    }
}

/// `y = x · Wᵀ + bias` on a batch of f32 vectors (`batch x depth`), `W` kept
/// as block-quantized int8.
#[derive(Debug, Clone)]
pub struct QuantizedGemm(Arc<QuantizedRows>);

impl PartialEq for QuantizedGemm {
    fn eq(&self, other: &Self) -> bool {
        // The same constants, or equal ones (no NaN is ever stored).
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for QuantizedGemm {}

impl Op for QuantizedGemm {
    fn name(&self) -> StaticName {
        "VisageQuantizedGemm".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{:?}", self.0)])
    }

    op_as_typed_op!();
}

impl EvalOp for QuantizedGemm {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape();
        let (depth, rows) = (self.0.depth(), self.0.rows());
        ensure!(shape.len() == 2 && shape[1] == depth, "{OP_TYPE} input {shape:?}, expected [batch, {depth}]");
        let batch = shape[0];
        let mut output = Tensor::zero::<f32>(&[batch, rows])?;
        let src = input.try_as_plain_ram()?;
        let src = src.as_slice::<f32>()?;
        let mut view = output.try_as_plain_ram_mut()?;
        let dst = view.as_slice_mut::<f32>()?;
        let mut scratch = Vec::new();
        for (x, y) in src.chunks_exact(depth).zip(dst.chunks_exact_mut(rows)) {
            self.0.apply(x, y, &mut scratch);
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for QuantizedGemm {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs[0].rank() == 2, "{OP_TYPE} input of rank {}", inputs[0].rank());
        Ok(tvec!(f32::fact([inputs[0].shape[0].clone(), self.0.rows().to_dim()])))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_values as values;
    use crate::onnx_rewrite::fold_constants;
    use crate::onnx_rewrite::test_graph::{attr, node, opset21, tensor, value};
    use tract_onnx::pb::GraphProto;

    const K: usize = 10;
    const N: usize = 3;
    const BLOCK: usize = 4;

    /// `y = alpha * x · W + beta * bias` with W a blocked DequantizeLinear of
    /// int8 (or uint8) constants, blocks along the depth; `W` stored `N x K`
    /// with `transB` or `K x N` without.
    fn model(trans_b: bool, unsigned: bool) -> ModelProto {
        let blocks = K.div_ceil(BLOCK);
        let bytes = |n: usize, seed: u32| -> Vec<u8> {
            values(n, seed)
                .iter()
                .map(|v| if unsigned { (v * 127.0 + 128.0) as u8 } else { (v * 127.0) as i8 as u8 })
                .collect()
        };
        let f32s = |v: Vec<f32>| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let dt = if unsigned { dtype::UINT8 } else { dtype::INT8 };
        let (q_dims, s_dims) = if trans_b { ([N, K], [N, blocks]) } else { ([K, N], [blocks, N]) };
        let dims = |d: [usize; 2]| [d[0] as i64, d[1] as i64];
        let mut gemm = node("Gemm", &["x", "w", "b"], "y", vec![attr("transB", i64::from(trans_b))]);
        gemm.attribute.push(AttributeProto { name: "alpha".into(), f: 0.5, r#type: 1, ..Default::default() });
        gemm.attribute.push(AttributeProto { name: "beta".into(), f: 2.0, r#type: 1, ..Default::default() });
        let axis = if trans_b { 1 } else { 0 };
        let graph = GraphProto {
            node: vec![
                node(
                    "DequantizeLinear",
                    &["wq", "ws", "wz"],
                    "w",
                    vec![attr("axis", axis), attr("block_size", BLOCK as i64)],
                ),
                gemm,
            ],
            initializer: vec![
                tensor("wq", &dims(q_dims), dt, bytes(N * K, 1)),
                tensor(
                    "ws",
                    &dims(s_dims),
                    dtype::FLOAT,
                    f32s(values(N * blocks, 2).iter().map(|v| 0.1 + v.abs()).collect()),
                ),
                tensor("wz", &dims(s_dims), dt, bytes(N * blocks, 3)),
                tensor("b", &[N as i64], dtype::FLOAT, f32s(values(N, 4))),
            ],
            input: vec![value("x", &[2, K as i64])],
            output: vec![value("y", &[2, N as i64])],
            ..Default::default()
        };
        opset21(graph)
    }

    fn run(model: &ModelProto) -> Vec<f32> {
        let mut onnx = tract_onnx::onnx();
        register(&mut onnx.op_register);
        let plan = onnx.model_for_proto_model(model).unwrap().into_optimized().unwrap().into_runnable().unwrap();
        let x = tract_ndarray::Array2::from_shape_vec((2, K), values(2 * K, 5)).unwrap();
        let out = plan.run(tvec![x.into_tensor().into()]).unwrap();
        out[0].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec()
    }

    #[test]
    fn a_kept_gemm_gives_what_the_dequantized_one_gives() {
        for (trans_b, unsigned) in [(true, false), (false, false), (true, true)] {
            let mut folded = model(trans_b, unsigned);
            fold_constants(&mut folded).unwrap();
            let mut kept = model(trans_b, unsigned);
            assert_eq!(keep_quantized_gemms(&mut kept).unwrap(), 1);
            let ops: Vec<&str> = kept.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.as_str()).collect();
            assert_eq!(ops, [OP_TYPE], "the DequantizeLinear went with the Gemm");
            fold_constants(&mut kept).unwrap();
            let (expected, got) = (run(&folded), run(&kept));
            assert_eq!(got.len(), 2 * N);
            for (a, b) in got.iter().zip(&expected) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "transB {trans_b} unsigned {unsigned}: {got:?} vs {expected:?}"
                );
            }
        }
    }

    #[test]
    fn blocks_along_the_outputs_are_left_to_the_f32_path() {
        let mut m = model(true, false);
        let dq = &mut m.graph.as_mut().unwrap().node[0];
        dq.attribute[0].i = 0; // axis 0: the scales no longer fit, nor the meaning
        assert_eq!(keep_quantized_gemms(&mut m).unwrap(), 0);
        assert_eq!(m.graph.as_ref().unwrap().node[1].op_type, "Gemm");
    }
}
