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
    pub(super) fn view(&self) -> TractResult<MaxAffine<'_>> {
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
        check_conv_input(g, &input)?;
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

/// A dense convolution as shifted matrix products ([`gemm`]), its epilogue
/// fused: SFace's and YuNet's 1x1 layers read their input in place; padded
/// or strided kernels (dlib's 3x3 layers, first layers) read a zero-padded
/// copy split into `stride_h x stride_w` phases, so that every tap of every
/// output row is a contiguous read (`phase[ry][rx][y][x] =
/// padded[y * stride_h + ry][x * stride_w + rx]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GemmConv {
    geometry: Geometry,
    packed: Arc<Packed>,
    layout: Layout,
}

/// Where the kernel reads: each phase's rows and columns (the output grid's
/// pitch), and each tap's offset from its input channel's first phase.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Layout {
    rows: usize,
    cols: usize,
    offsets: Vec<usize>,
    /// Where each output point is on the phases' grid, when the grid has
    /// columns that are not outputs and the product packs its input (then
    /// only the outputs are computed: [`gemm::conv_gathered`]).
    gather: Option<Vec<usize>>,
}

impl GemmConv {
    /// The operator for a recognised dense convolution (`weights`:
    /// `out_channels x in_channels x kernel_h x kernel_w`).
    pub fn new(geometry: Geometry, weights: &Tensor, bias: &Tensor, epilogue: Option<&Epilogue>) -> TractResult<Self> {
        let g = &geometry;
        ensure!(g.groups == 1 && g.is_valid(), "not a dense convolution: {g:?}");
        let w = weights.try_as_plain_ram()?;
        let b = bias.try_as_plain_ram()?;
        let act = epilogue.map(Epilogue::view).transpose()?;
        let shape = [g.out_channels, g.in_channels, g.kernel_h * g.kernel_w];
        let packed = Packed::new(w.as_slice::<f32>()?, shape, b.as_slice::<f32>()?, act);
        Ok(GemmConv { layout: Self::layout(g, gemm::packs(&packed)), geometry, packed: Arc::new(packed) })
    }

    fn layout(g: &Geometry, packs: bool) -> Layout {
        let (sh, sw) = (g.stride_h, g.stride_w);
        let (rows, cols) = if g.is_unit_stride_unpadded() {
            (g.in_h, g.in_w)
        } else {
            ((g.in_h + g.pad_top + g.pad_bottom).div_ceil(sh), (g.in_w + g.pad_left + g.pad_right).div_ceil(sw))
        };
        let offsets = (0..g.kernel_h * g.kernel_w)
            .map(|t| {
                let (ky, kx) = (t / g.kernel_w, t % g.kernel_w);
                ((ky % sh) * sw + kx % sw) * rows * cols + (ky / sh) * cols + kx / sw
            })
            .collect();
        let (oh, ow) = (g.out_h(), g.out_w());
        let gather = (packs && cols != ow).then(|| (0..oh * ow).map(|i| i / ow * cols + i % ow).collect());
        Layout { rows, cols, offsets, gather }
    }

    /// Copies one image into its zero-padded phases (`dst`: `in_channels x
    /// stride_h x stride_w x rows x cols`, zeroed by the caller).
    fn fill_phases(&self, src: &[f32], dst: &mut [f32]) {
        let (g, l) = (&self.geometry, &self.layout);
        let (sh, sw) = (g.stride_h, g.stride_w);
        let phase = l.rows * l.cols;
        for (plane, out) in src.chunks_exact(g.in_h * g.in_w).zip(dst.chunks_exact_mut(sh * sw * phase)) {
            for (y, row) in plane.chunks_exact(g.in_w).enumerate() {
                let py = y + g.pad_top;
                let base = (py % sh) * sw * phase + (py / sh) * l.cols;
                if sw == 1 {
                    out[base + g.pad_left..][..g.in_w].copy_from_slice(row);
                    continue;
                }
                for (x, &v) in row.iter().enumerate() {
                    let px = x + g.pad_left;
                    out[base + (px % sw) * phase + px / sw] = v;
                }
            }
        }
    }

    /// One image: `src` is `in_channels x in_h x in_w`, `dst`
    /// `out_channels x out_h x out_w`. Outputs are computed on the phases'
    /// grid (`cols` a row, the last few of each row not outputs) in `grid`,
    /// unless the grid is the output's.
    fn run(&self, src: &[f32], dst: &mut [f32], phases: &mut Vec<f32>, grid: &mut Vec<f32>) {
        let g = &self.geometry;
        let (oh, ow) = (g.out_h(), g.out_w());
        let l = &self.layout;
        let per_channel = g.stride_h * g.stride_w * l.rows * l.cols;
        let input = if g.is_unit_stride_unpadded() {
            src
        } else {
            phases.clear();
            phases.resize(g.in_channels * per_channel, 0.0);
            self.fill_phases(src, phases);
            phases
        };
        if l.cols == ow {
            gemm::conv(&self.packed, input, per_channel, &l.offsets, oh * ow, dst);
            return;
        }
        if let Some(gather) = &l.gather {
            gemm::conv_gathered(&self.packed, input, per_channel, &l.offsets, gather, dst);
            return;
        }
        let points = (oh - 1) * l.cols + ow;
        grid.resize(g.out_channels * points, 0.0);
        gemm::conv(&self.packed, input, per_channel, &l.offsets, points, grid);
        for (d, s) in dst.chunks_exact_mut(oh * ow).zip(grid.chunks_exact(points)) {
            for (row, from) in d.chunks_exact_mut(ow).zip(s.chunks(l.cols)) {
                row.copy_from_slice(&from[..ow]);
            }
        }
    }
}

impl Op for GemmConv {
    fn name(&self) -> StaticName {
        "VisageGemmConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let g = &self.geometry;
        Ok(vec![format!("{} -> {} channels, {}x{}", g.in_channels, g.out_channels, g.kernel_h, g.kernel_w)])
    }

    op_as_typed_op!();
}

impl EvalOp for GemmConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let g = &self.geometry;
        check_conv_input(g, &input)?;
        let (mut phases, mut grid) = (Vec::new(), Vec::new());
        let output = map_images(&input, [g.out_channels, g.out_h(), g.out_w()], |src, dst| {
            self.run(src, dst, &mut phases, &mut grid)
        })?;
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for GemmConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        conv_output_facts(&self.geometry, inputs)
    }

    as_op!();
}

fn check_conv_input(g: &Geometry, input: &Tensor) -> TractResult<()> {
    let shape = input.shape();
    ensure!(
        shape.len() >= 3 && shape[shape.len() - 3..] == [g.in_channels, g.in_h, g.in_w],
        "convolution input {shape:?} for geometry {g:?}"
    );
    Ok(())
}

/// A convolution's output: the input's batch axis, the geometry's CHW.
fn conv_output_facts(g: &Geometry, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
    let mut shape = inputs[0].shape.to_tvec();
    let axis = shape.len() - 3;
    shape[axis] = g.out_channels.to_dim();
    shape[axis + 1] = g.out_h().to_dim();
    shape[axis + 2] = g.out_w().to_dim();
    Ok(tvec!(f32::fact(shape)))
}

/// Runs `per_image` on each image of a CHW or NCHW f32 input, with a new
/// output of `out_chw` an image, which `per_image` must fill entirely.
pub(super) fn map_images(
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
        conv_output_facts(&self.geometry, inputs)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_values as values;

    /// The matrix-product convolution agrees with the direct one (itself
    /// checked against the definition) through padding, strides and kernels.
    #[test]
    fn gemm_conv_matches_the_direct_convolution() {
        for (ci, co, [h, w], [kh, kw], [sh, sw], [pt, pl, pb, pr]) in [
            (3, 32, [21, 19], [7, 7], [2, 2], [3, 3, 3, 3]),
            (40, 13, [9, 10], [3, 3], [1, 1], [1, 1, 1, 1]),
            (33, 8, [12, 11], [3, 3], [2, 2], [0, 0, 0, 0]),
            (30, 7, [8, 8], [1, 1], [1, 1], [0, 0, 0, 0]),
            (20, 6, [10, 9], [3, 2], [1, 2], [2, 0, 1, 1]),
            // Packed, so only the output points are computed (dlib's 4x4 layers).
            (29, 257, [4, 5], [3, 3], [1, 1], [1, 1, 1, 1]),
            (30, 256, [9, 7], [3, 3], [2, 2], [1, 0, 1, 1]),
        ] {
            let g = Geometry {
                in_channels: ci,
                out_channels: co,
                groups: 1,
                in_h: h,
                in_w: w,
                kernel_h: kh,
                kernel_w: kw,
                stride_h: sh,
                stride_w: sw,
                pad_top: pt,
                pad_left: pl,
                pad_bottom: pb,
                pad_right: pr,
            };
            let (weights, bias, input) = (values(co * g.taps(), 1), values(co, 2), values(ci * h * w, 3));
            let (scale, shift) = (vec![0.25; co], values(co, 4));
            let epilogue = Epilogue {
                scale: Arc::new(Tensor::from(tract_ndarray::Array1::from(scale.clone()))),
                shift: Arc::new(Tensor::from(tract_ndarray::Array1::from(shift.clone()))),
            };
            let act = MaxAffine { scale: &scale, shift: &shift };
            let n = co * g.out_h() * g.out_w();
            let mut expected = vec![0f32; n];
            conv::direct_conv(&g, &input, &weights, &bias, Some(act), &mut expected, &mut Vec::new());
            let wt = Tensor::from(tract_ndarray::Array1::from(weights));
            let bt = Tensor::from(tract_ndarray::Array1::from(bias));
            let op = GemmConv::new(g, &wt, &bt, Some(&epilogue)).unwrap();
            let mut got = vec![f32::NAN; n];
            op.run(&input, &mut got, &mut Vec::new(), &mut Vec::new());
            for (i, (a, b)) in got.iter().zip(&expected).enumerate() {
                assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{g:?} at {i}: {a} vs {b}");
            }
        }
    }
}
