//! The pass that puts this module's operators into a decluttered tract
//! model, before tract's own code generation:
//!
//! - a convolution this module runs ([`recognise`]: depthwise, or at most
//!   [`MAX_TAPS`] taps a output point) becomes a [`DirectConv`], with
//!   - `Max(y, Conv1x1_depthwise(y))` after it (a PReLU as the ONNX rewrites
//!     express it, `max(y, a * y + b)`) as its epilogue,
//!   - or `Max(y, c)` after it, `c` a scalar constant (a ReLU when `c` is 0),
//!     as the epilogue `max(y, 0 * y + c)`;
//! - a dense convolution (SFace's and YuNet's 1x1 layers, dlib's 3x3 layers,
//!   first layers) becomes a [`GemmConv`] where [`gemm::preferred`] (AVX2
//!   without AVX-512), its epilogue fused the same way;
//! - a 1x1 convolution, which tract's declutter has already turned into
//!   `Add(EinSum NIHW,OI->NOHW, bias)`, is turned back into a convolution
//!   first, so that it is taken too (with few input channels, or any where
//!   [`gemm::preferred`]);
//! - that PReLU after anything else (tract's matrix products) becomes one
//!   in-place [`ChannelMaxAffine`];
//! - 2x2 max pooling with stride 2 and no padding becomes [`MaxPool2x2`].
//!
//! A convolution this pass does not recognise exactly (a layout, padding
//! mode, dilation or quantisation it does not handle) is left to tract.
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, MaxPool, PaddingSpec, PoolSpec};
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math::{Add, Max};
use tract_onnx::tract_core::ops::nn::DataFormat;

use super::conv::Geometry;
use super::gemm;
use super::ops::{ChannelMaxAffine, DirectConv, Epilogue, GemmConv, MaxPool2x2};
use super::quantized_conv::QuantizedConv;

/// The most taps a output point (a group's input channels times the kernel)
/// of a dense convolution run directly; above it matrix products win
/// ([`GemmConv`] where [`gemm::preferred`], tract's elsewhere).
pub const MAX_TAPS: usize = 27;

/// How many nodes the pass replaced, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fused {
    /// EinSum + bias turned back into 1x1 convolutions.
    pub pointwise: usize,
    pub convolutions: usize,
    pub with_floor: usize,
    pub with_prelu: usize,
    pub epilogues: usize,
    pub max_pools: usize,
}

/// A convolution this module runs, with its constants.
struct Recognised {
    geometry: Geometry,
    weights: Arc<Tensor>,
    bias: Arc<Tensor>,
}

impl Recognised {
    /// The operator that runs it: shifted matrix products for a dense
    /// convolution where [`gemm::preferred`], a direct convolution otherwise.
    fn into_op(self, epilogue: Option<Epilogue>) -> TractResult<Box<dyn TypedOp>> {
        let g = &self.geometry;
        if g.groups == 1 && (g.taps() > MAX_TAPS || g.is_pointwise()) && gemm::preferred() {
            return Ok(Box::new(GemmConv::new(self.geometry, &self.weights, &self.bias, epilogue.as_ref())?));
        }
        Ok(Box::new(DirectConv { geometry: self.geometry, weights: self.weights, bias: self.bias, epilogue }))
    }
}

/// Rewrites `model` in place (see the module documentation), in order:
/// pointwise layers as convolutions, then epilogues (so that their
/// convolutions are taken whole), floors, the remaining convolutions, max pools.
pub fn fuse(model: &mut TypedModel) -> TractResult<Fused> {
    let mut fused = Fused::default();
    fuse_pointwise(model, &mut fused)?;
    fuse_epilogues(model, &mut fused)?;
    fuse_floors(model, &mut fused)?;
    replace_convolutions(model, &mut fused)?;
    replace_max_pools(model, &mut fused)?;
    Ok(fused)
}

/// Fully connected layers applied pointwise as 1x1 convolutions.
fn fuse_pointwise(model: &mut TypedModel, fused: &mut Fused) -> TractResult<()> {
    while let Some(p) = next_pointwise(model)? {
        let mut patch = TypedModelPatch::new("visage-pointwise-as-conv");
        let name = model.node(p.add).name.clone();
        let mut input = patch.tap_model(model, p.input)?;
        match p.batch {
            BatchAxis::Keep => {}
            BatchAxis::Drop => input = patch.wire_node(format!("{name}.visage_image"), AxisOp::Rm(0), &[input])?[0],
            BatchAxis::Add => input = patch.wire_node(format!("{name}.visage_batch"), AxisOp::Add(0), &[input])?[0],
        }
        let kernel = patch.add_const(format!("{name}.visage_kernel"), p.kernel)?;
        let bias = patch.add_const(format!("{name}.visage_bias"), p.bias)?;
        let wire = patch.wire_node(format!("{name}.visage_conv"), p.conv, &[input, kernel, bias])?[0];
        patch.shunt_outside(model, OutletId::new(p.add, 0), wire)?;
        patch.obliterate(p.einsum)?;
        patch.obliterate(p.add)?;
        patch.apply(model)?;
        fused.pointwise += 1;
    }
    Ok(())
}

/// A per-channel `Max` then scale-and-shift folded into the convolution before it (or run as one pass).
fn fuse_epilogues(model: &mut TypedModel, fused: &mut Fused) -> TractResult<()> {
    while let Some((max, scale_conv, scale)) = next_epilogue(model)? {
        let y = model.node(scale_conv).inputs[0];
        let epilogue = Epilogue { scale: scale.weights, shift: scale.bias };
        let producer = y.node;
        let only_feeds_epilogue = model.node(producer).outputs.len() == 1
            && model.outlet_successors(y).iter().all(|s| s.node == max || s.node == scale_conv);
        let mut patch = TypedModelPatch::new("visage-epilogue");
        // The producer with the epilogue inside, when it can take one: a
        // kept quantized 1x1 convolution, or a convolution this module runs.
        let with_epilogue: Option<Box<dyn TypedOp>> = if !only_feeds_epilogue {
            None
        } else if let Some(q) = model.node(producer).op_as::<QuantizedConv>().filter(|q| q.epilogue.is_none()) {
            Some(Box::new(QuantizedConv { epilogue: Some(epilogue.clone()), ..q.clone() }))
        } else {
            match recognise(model, producer)? {
                Some(dw) if !is_scale(&dw.geometry) => Some(dw.into_op(Some(epilogue.clone()))?),
                _ => None,
            }
        };
        let wire = match with_epilogue {
            Some(op) => {
                let input = patch.tap_model(model, model.node(producer).inputs[0])?;
                fused.with_prelu += 1;
                let name = format!("{}.fused", model.node(producer).name);
                let wire = patch.wire_node(name, op, &[input])?[0];
                patch.obliterate(producer)?;
                wire
            }
            None => {
                let input = patch.tap_model(model, y)?;
                fused.epilogues += 1;
                let name = format!("{}.fused", model.node(max).name);
                patch.wire_node(name, ChannelMaxAffine { epilogue }, &[input])?[0]
            }
        };
        patch.shunt_outside(model, OutletId::new(max, 0), wire)?;
        patch.obliterate(scale_conv)?;
        patch.obliterate(max)?;
        patch.apply(model)?;
    }
    Ok(())
}

/// A `Max` with a constant after a convolution as that convolution's floor.
fn fuse_floors(model: &mut TypedModel, fused: &mut Fused) -> TractResult<()> {
    while let Some((max, conv, floor, dw)) = next_floor(model)? {
        let channels = dw.geometry.out_channels;
        let epilogue = Epilogue {
            scale: Arc::new(Tensor::from(tract_ndarray::Array1::from_elem(channels, 0f32))),
            shift: Arc::new(Tensor::from(tract_ndarray::Array1::from_elem(channels, floor))),
        };
        let mut patch = TypedModelPatch::new("visage-conv-floor");
        let input = patch.tap_model(model, model.node(conv).inputs[0])?;
        let op = dw.into_op(Some(epilogue))?;
        let wire = patch.wire_node(format!("{}.fused", model.node(conv).name), op, &[input])?[0];
        patch.shunt_outside(model, OutletId::new(max, 0), wire)?;
        patch.obliterate(conv)?;
        patch.obliterate(max)?;
        patch.apply(model)?;
        fused.with_floor += 1;
    }
    Ok(())
}

/// The remaining convolutions this module runs.
fn replace_convolutions(model: &mut TypedModel, fused: &mut Fused) -> TractResult<()> {
    while let Some((node, dw)) = next_conv(model)? {
        let mut patch = TypedModelPatch::new("visage-conv");
        let input = patch.tap_model(model, model.node(node).inputs[0])?;
        let op = dw.into_op(None)?;
        let wire = patch.wire_node(format!("{}.visage", model.node(node).name), op, &[input])?[0];
        patch.shunt_outside(model, OutletId::new(node, 0), wire)?;
        patch.obliterate(node)?;
        patch.apply(model)?;
        fused.convolutions += 1;
    }
    Ok(())
}

/// 2x2 stride-2 max pooling.
fn replace_max_pools(model: &mut TypedModel, fused: &mut Fused) -> TractResult<()> {
    while let Some(node) = next_max_pool(model)? {
        let mut patch = TypedModelPatch::new("visage-max-pool");
        let input = patch.tap_model(model, model.node(node).inputs[0])?;
        let wire = patch.wire_node(format!("{}.visage", model.node(node).name), MaxPool2x2, &[input])?[0];
        patch.shunt_outside(model, OutletId::new(node, 0), wire)?;
        patch.obliterate(node)?;
        patch.apply(model)?;
        fused.max_pools += 1;
    }
    Ok(())
}

/// The next f32 2x2 stride-2 max pooling without padding, on CHW or NCHW.
fn next_max_pool(model: &TypedModel) -> TractResult<Option<usize>> {
    for node in model.eval_order()? {
        let n = model.node(node);
        let Some(pool) = n.op_as::<MaxPool>() else { continue };
        let spec = &pool.pool_spec;
        let unpadded = match &spec.padding {
            PaddingSpec::Valid => true,
            PaddingSpec::Explicit(b, a) | PaddingSpec::ExplicitOnnxPool(b, a, false) => {
                b.iter().chain(a).all(|&p| p == 0)
            }
            _ => false,
        };
        let x = model.outlet_fact(n.inputs[0])?;
        if pool.with_index_outputs.is_none()
            && n.outputs.len() == 1
            && unpadded
            && *spec.kernel_shape == [2, 2]
            && spec.strides.as_deref() == Some(&[2, 2])
            && spec.dilations.as_ref().is_none_or(|d| d.iter().all(|&v| v == 1))
            && matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
            && x.datum_type == f32::datum_type()
            && x.shape.as_concrete().is_some()
        {
            return Ok(Some(node));
        }
    }
    Ok(None)
}

/// A per-channel scale (a 1x1 depthwise convolution): the PReLU's slope
/// product, left to the epilogue patterns.
fn is_scale(g: &Geometry) -> bool {
    g.kernel_h == 1
        && g.kernel_w == 1
        && g.stride_h == 1
        && g.stride_w == 1
        && g.groups == g.in_channels
        && g.groups == g.out_channels
}

/// How an EinSum's input batch axis relates to its output's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BatchAxis {
    /// Both have one, or neither.
    Keep,
    /// A batch of one summed away: removed from the input.
    Drop,
    /// Only the output has one (of one): added to the input.
    Add,
}

/// `Add(EinSum NIHW,OI->NOHW (x, w), b)` as the equivalent 1x1 convolution.
struct EinsumConv {
    einsum: usize,
    add: usize,
    input: OutletId,
    /// What the input's batch axis needs first.
    batch: BatchAxis,
    conv: Conv,
    kernel: Tensor,
    bias: Tensor,
}

/// The next 1x1 convolution tract expressed as an EinSum plus bias, f32, with
/// constant weights and bias, and at most [`MAX_TAPS`] input channels unless
/// [`gemm::preferred`].
fn next_pointwise(model: &TypedModel) -> TractResult<Option<EinsumConv>> {
    for node in model.eval_order()? {
        let n = model.node(node);
        let Some(einsum) = n.op_as::<EinSum>() else { continue };
        // A batch of one summed away reads as its CHW image.
        let (format, batch) = match einsum.axes.to_string().as_str() {
            "NIHW,OI->NOHW" => (DataFormat::NCHW, BatchAxis::Keep),
            "IHW,OI->OHW" => (DataFormat::CHW, BatchAxis::Keep),
            "NIHW,OI->OHW" => (DataFormat::CHW, BatchAxis::Drop),
            "IHW,OI->NOHW" => (DataFormat::NCHW, BatchAxis::Add),
            _ => continue,
        };
        let successors = model.outlet_successors(OutletId::new(node, 0));
        let (Some(w), [succ]) = (model.outlet_fact(n.inputs[1])?.konst.clone(), successors) else { continue };
        let add = model.node(succ.node);
        let x = model.outlet_fact(n.inputs[0])?;
        if einsum.q_params.is_some()
            || x.datum_type != f32::datum_type()
            || w.datum_type() != f32::datum_type()
            || w.rank() != 2
            || (w.shape()[1] > MAX_TAPS && !gemm::preferred())
            || x.shape.as_concrete().is_none_or(|s| batch == BatchAxis::Drop && s.first() != Some(&1))
            || add.inputs.len() != 2
            || !add.op_as::<TypedBinOp>().is_some_and(|bin| bin.0.is::<Add>())
        {
            continue;
        }
        let (co, ci) = (w.shape()[0], w.shape()[1]);
        let Some(b) = model.outlet_fact(add.inputs[1 - succ.slot])?.konst.clone() else { continue };
        if b.datum_type() != f32::datum_type() || b.len() != co || add.outputs[0].fact.shape != n.outputs[0].fact.shape
        {
            continue;
        }
        let conv = Conv {
            pool_spec: PoolSpec {
                data_format: format,
                kernel_shape: tvec![1, 1],
                padding: PaddingSpec::Valid,
                dilations: None,
                strides: None,
                input_channels: ci,
                output_channels: co,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: 1,
            q_params: None,
        };
        return Ok(Some(EinsumConv {
            einsum: node,
            add: add.id,
            input: n.inputs[0],
            batch,
            conv,
            kernel: w.into_tensor().into_shape(&[co, ci, 1, 1])?,
            bias: b.into_tensor().into_shape(&[co])?,
        }));
    }
    Ok(None)
}

/// The binary `Max` nodes, in evaluation order.
fn max_nodes(model: &TypedModel) -> TractResult<Vec<usize>> {
    Ok(model
        .eval_order()?
        .into_iter()
        .filter(|&node| {
            let n = model.node(node);
            n.inputs.len() == 2 && n.op_as::<TypedBinOp>().is_some_and(|bin| bin.0.is::<Max>())
        })
        .collect())
}

/// The next `Max(y, scale(y))` whose `scale` is a recognised pointwise
/// depthwise convolution of `y`: (the Max node, the convolution node, the
/// convolution).
fn next_epilogue(model: &TypedModel) -> TractResult<Option<(usize, usize, Recognised)>> {
    for node in max_nodes(model)? {
        let n = model.node(node);
        for (slot, other) in [(0, 1), (1, 0)] {
            let conv = n.inputs[slot].node;
            let wired = model.node(conv).outputs.len() == 1
                && model.outlet_successors(n.inputs[slot]).len() == 1
                && model.node(conv).inputs.first() == Some(&n.inputs[other]);
            let same_shape = model.outlet_fact(n.inputs[0])?.shape == model.outlet_fact(n.inputs[1])?.shape;
            if wired
                && same_shape
                && let Some(r) = recognise(model, conv)?
                && is_scale(&r.geometry)
            {
                return Ok(Some((node, conv, r)));
            }
        }
    }
    Ok(None)
}

/// The next `Max(conv(x), c)`, `c` a scalar constant, the convolution
/// feeding nothing else: (the Max node, the convolution node, `c`, the
/// convolution).
fn next_floor(model: &TypedModel) -> TractResult<Option<(usize, usize, f32, Recognised)>> {
    for node in max_nodes(model)? {
        let n = model.node(node);
        for (slot, other) in [(0, 1), (1, 0)] {
            let Some(c) = model.outlet_fact(n.inputs[other])?.konst.clone() else { continue };
            if c.len() != 1 || c.datum_type() != f32::datum_type() {
                continue;
            }
            let conv = n.inputs[slot].node;
            let feeds_only_max =
                model.node(conv).outputs.len() == 1 && model.outlet_successors(n.inputs[slot]).len() == 1;
            let same_shape = model.outlet_fact(n.inputs[slot])?.shape == n.outputs[0].fact.shape;
            if feeds_only_max
                && same_shape
                && let Some(r) = recognise(model, conv)?
                && !is_scale(&r.geometry)
            {
                let floor = c.try_as_plain_ram()?.as_slice::<f32>()?[0];
                return Ok(Some((node, conv, floor, r)));
            }
        }
    }
    Ok(None)
}

/// The next recognised convolution that is not a per-channel scale.
fn next_conv(model: &TypedModel) -> TractResult<Option<(usize, Recognised)>> {
    for node in model.eval_order()? {
        if let Some(r) = recognise(model, node)?
            && !is_scale(&r.geometry)
        {
            return Ok(Some((node, r)));
        }
    }
    Ok(None)
}

/// `node` as a convolution this module runs, if it is one: f32, CHW or
/// NCHW, OIHW kernel, explicit or no padding, no dilation, constant weights
/// and bias; depthwise, or at most [`MAX_TAPS`] taps a output point, or any
/// dense convolution where [`gemm::preferred`].
fn recognise(model: &TypedModel, node: usize) -> TractResult<Option<Recognised>> {
    let n = model.node(node);
    let Some(conv) = n.op_as::<Conv>() else { return Ok(None) };
    let spec = &conv.pool_spec;
    let (ci, co, groups) = (spec.input_channels, spec.output_channels, conv.group);
    let dilated = spec.dilations.as_ref().is_some_and(|d| d.iter().any(|&v| v != 1));
    let depthwise = groups == ci && groups == co;
    let taps = if groups > 0 && ci.is_multiple_of(groups) {
        ci / groups * spec.kernel_shape.iter().product::<usize>()
    } else {
        usize::MAX
    };
    if conv.q_params.is_some()
        || !(depthwise || taps <= MAX_TAPS || (groups == 1 && gemm::preferred()))
        || conv.kernel_fmt != KernelFormat::OIHW
        || !matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
        || spec.kernel_shape.len() != 2
        || dilated
        || n.inputs.len() != 3
    {
        return Ok(None);
    }
    let x = model.outlet_fact(n.inputs[0])?;
    let (Some(kernel), Some(bias)) =
        (model.outlet_fact(n.inputs[1])?.konst.clone(), model.outlet_fact(n.inputs[2])?.konst.clone())
    else {
        return Ok(None);
    };
    let Some(shape) = x.shape.as_concrete() else { return Ok(None) };
    if x.datum_type != f32::datum_type()
        || kernel.datum_type() != f32::datum_type()
        || bias.datum_type() != f32::datum_type()
        || shape.len() < 3
        || (shape.len() == 4 && spec.data_format != DataFormat::NCHW)
    {
        return Ok(None);
    }
    let rank = shape.len();
    let (before, after) = match &spec.padding {
        PaddingSpec::Valid => (vec![0, 0], vec![0, 0]),
        PaddingSpec::Explicit(b, a) if b.len() == 2 && a.len() == 2 => (b.to_vec(), a.to_vec()),
        _ => return Ok(None),
    };
    let strides = spec.strides.as_ref().map(|s| s.to_vec()).unwrap_or_else(|| vec![1, 1]);
    let geometry = Geometry {
        in_channels: ci,
        out_channels: co,
        groups,
        in_h: shape[rank - 2],
        in_w: shape[rank - 1],
        kernel_h: spec.kernel_shape[0],
        kernel_w: spec.kernel_shape[1],
        stride_h: strides[0],
        stride_w: strides[1],
        pad_top: before[0],
        pad_left: before[1],
        pad_bottom: after[0],
        pad_right: after[1],
    };
    let out = model.outlet_fact(OutletId::new(node, 0))?;
    let expected = [co, geometry.out_h(), geometry.out_w()];
    if !geometry.is_valid()
        || shape[rank - 3] != ci
        || out.shape.as_concrete().is_none_or(|o| o[o.len().saturating_sub(3)..] != expected)
        || kernel.len() != co * geometry.taps()
    {
        return Ok(None);
    }
    let weights = kernel.into_tensor().into_shape(&[co * geometry.taps()])?;
    let bias = match bias.len() {
        1 => {
            let value = *bias.try_as_plain_ram()?.as_slice::<f32>()?.first().unwrap_or(&0.0);
            Tensor::from(tract_ndarray::Array1::from_elem(co, value))
        }
        n if n == co => bias.into_tensor().into_shape(&[co])?,
        _ => return Ok(None),
    };
    Ok(Some(Recognised { geometry, weights: Arc::new(weights), bias: Arc::new(bias) }))
}
