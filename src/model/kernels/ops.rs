//! The kernels of this module as tract operators, with their constants
//! (weights, bias, epilogue) held by the operator itself. They take one f32
//! tensor, CHW or NCHW with any batch.
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use super::conv::{self, Geometry, MaxAffine};
use super::gemm::{self, Packed};
use super::pool;

/// Per-channel `(scale, shift)` of the epilogue `y = max(y, scale * y + shift)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Epilogue {
    pub scale: Arc<Tensor>,
    pub shift: Arc<Tensor>,
}

impl Epilogue {
    fn view(&self) -> TractResult<MaxAffine<'_>> {
        Ok(MaxAffine {
            scale: self.scale.try_as_plain_ram()?.as_slice::<f32>()?,
            shift: self.shift.try_as_plain_ram()?.as_slice::<f32>()?,
        })
    }
}

/// The batch size and whether the tensor has a batch axis, from its rank.
fn batch(shape: &[usize]) -> TractResult<(usize, usize)> {
    match shape.len() {
        3 => Ok((1, 0)),
        4 => Ok((shape[0], 1)),
        n => bail!("expected a CHW or NCHW tensor, got rank {n}"),
    }
}

/// A direct convolution ([`conv`]) with an optional fused epilogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectConv {
    pub geometry: Geometry,
    /// `out_channels x taps`.
    pub weights: Arc<Tensor>,
    /// One value an output channel.
    pub bias: Arc<Tensor>,
    pub epilogue: Option<Epilogue>,
}

impl Op for DirectConv {
    fn name(&self) -> StaticName {
        "VisageDirectConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let g = &self.geometry;
        Ok(vec![format!(
            "{} -> {} channels in {} groups, {}x{} stride {}x{} pad {},{},{},{} epilogue {}",
            g.in_channels,
            g.out_channels,
            g.groups,
            g.kernel_h,
            g.kernel_w,
            g.stride_h,
            g.stride_w,
            g.pad_top,
            g.pad_left,
            g.pad_bottom,
            g.pad_right,
            self.epilogue.is_some()
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for DirectConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let g = &self.geometry;
        let shape = input.shape();
        ensure!(
            shape.len() >= 3 && shape[shape.len() - 3..] == [g.in_channels, g.in_h, g.in_w],
            "convolution input {shape:?} for geometry {g:?}"
        );
        let weights = self.weights.try_as_plain_ram()?;
        let (weights, bias) = (weights.as_slice::<f32>()?, self.bias.try_as_plain_ram()?);
        let bias = bias.as_slice::<f32>()?;
        let act = self.epilogue.as_ref().map(Epilogue::view).transpose()?;
        let mut scratch = Vec::new();
        let output = map_images(&input, [g.out_channels, g.out_h(), g.out_w()], |src, dst| {
            conv::direct_conv(g, src, weights, bias, act, dst, &mut scratch)
        })?;
        Ok(tvec!(output.into_tvalue()))
    }
}

/// A dense 1x1 convolution, stride 1, no padding, as one matrix product
/// ([`gemm`]), its epilogue fused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointwise {
    pub packed: Arc<Packed>,
}

impl Pointwise {
    /// The operator for a recognised dense 1x1 convolution.
    pub fn new(weights: &Tensor, bias: &Tensor, epilogue: Option<&Epilogue>, rows: usize) -> TractResult<Self> {
        let w = weights.try_as_plain_ram()?;
        let w = w.as_slice::<f32>()?;
        let b = bias.try_as_plain_ram()?;
        let act = epilogue.map(Epilogue::view).transpose()?;
        ensure!(rows > 0 && w.len().is_multiple_of(rows), "{} weights for {rows} output channels", w.len());
        Ok(Pointwise { packed: Arc::new(Packed::new(w, rows, w.len() / rows, b.as_slice::<f32>()?, act)) })
    }
}

impl Op for Pointwise {
    fn name(&self) -> StaticName {
        "VisagePointwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{} -> {} channels", self.packed.depth(), self.packed.rows())])
    }

    op_as_typed_op!();
}

impl EvalOp for Pointwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape();
        ensure!(
            shape.len() >= 3 && shape[shape.len() - 3] == self.packed.depth(),
            "pointwise input {shape:?} for {} input channels",
            self.packed.depth()
        );
        let [h, w] = [shape[shape.len() - 2], shape[shape.len() - 1]];
        let output =
            map_images(&input, [self.packed.rows(), h, w], |src, dst| gemm::pointwise(&self.packed, src, h * w, dst))?;
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for Pointwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut shape = inputs[0].shape.to_tvec();
        let axis = shape.len() - 3;
        shape[axis] = self.packed.rows().to_dim();
        Ok(tvec!(f32::fact(shape)))
    }

    as_op!();
}

/// Runs `per_image` on each image of a CHW or NCHW f32 input, with a new
/// output of `out_chw` an image, which `per_image` must fill entirely.
fn map_images(
    input: &Tensor,
    out_chw: [usize; 3],
    mut per_image: impl FnMut(&[f32], &mut [f32]),
) -> TractResult<Tensor> {
    let shape = input.shape();
    let (n, axis) = batch(shape)?;
    let mut out_shape = shape.to_vec();
    out_shape[axis..].copy_from_slice(&out_chw);
    // SAFETY: every kernel given here writes every output value.
    let mut output = unsafe { Tensor::uninitialized::<f32>(&out_shape)? };
    let src = input.try_as_plain_ram()?;
    let src = src.as_slice::<f32>()?;
    let mut view = output.try_as_plain_ram_mut()?;
    let dst = view.as_slice_mut::<f32>()?;
    let (in_len, out_len) = (src.len() / n.max(1), dst.len() / n.max(1));
    for b in 0..n {
        per_image(&src[b * in_len..][..in_len], &mut dst[b * out_len..][..out_len]);
    }
    Ok(output)
}

impl TypedOp for DirectConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut shape = inputs[0].shape.to_tvec();
        let axis = shape.len() - 3;
        shape[axis] = self.geometry.out_channels.to_dim();
        shape[axis + 1] = self.geometry.out_h().to_dim();
        shape[axis + 2] = self.geometry.out_w().to_dim();
        Ok(tvec!(f32::fact(shape)))
    }

    as_op!();
}

/// The epilogue alone, in place: for convolutions tract runs as matrix
/// products, whose outputs it feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelMaxAffine {
    pub epilogue: Epilogue,
}

impl Op for ChannelMaxAffine {
    fn name(&self) -> StaticName {
        "VisageChannelMaxAffine".into()
    }

    op_as_typed_op!();
}

impl EvalOp for ChannelMaxAffine {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape().to_vec();
        let (n, axis) = batch(&shape)?;
        let plane = shape[axis + 1] * shape[axis + 2];
        // The only reader of its input in the fused graphs, so usually no copy.
        let mut data = input.into_tensor();
        let mut view = data.try_as_plain_ram_mut()?;
        let values = view.as_slice_mut::<f32>()?;
        let act = self.epilogue.view()?;
        let per_batch = values.len() / n.max(1);
        for chunk in values.chunks_exact_mut(per_batch.max(1)) {
            conv::max_affine_in_place(chunk, plane, act);
        }
        Ok(tvec!(data.into_tvalue()))
    }
}

impl TypedOp for ChannelMaxAffine {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(inputs[0].shape.to_tvec())))
    }

    as_op!();
}

/// 2x2 max pooling, stride 2, no padding, floor mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaxPool2x2;

impl Op for MaxPool2x2 {
    fn name(&self) -> StaticName {
        "VisageMaxPool2x2".into()
    }

    op_as_typed_op!();
}

impl EvalOp for MaxPool2x2 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape();
        ensure!(shape.len() >= 3, "max pooling input {shape:?}");
        let [c, h, w] = [shape[shape.len() - 3], shape[shape.len() - 2], shape[shape.len() - 1]];
        let output = map_images(&input, [c, h / 2, w / 2], |src, dst| pool::max_pool_2x2(c, h, w, src, dst))?;
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for MaxPool2x2 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut shape = inputs[0].shape.to_tvec();
        let axis = shape.len() - 3;
        for d in &mut shape[axis + 1..] {
            *d = d.clone() / 2;
        }
        Ok(tvec!(f32::fact(shape)))
    }

    as_op!();
}
