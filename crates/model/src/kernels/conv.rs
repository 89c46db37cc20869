//! Direct convolution for the cases matrix products serve badly: few taps a
//! output point (depthwise convolutions, where each output channel reads one
//! input channel; first layers and 1x1 convolutions with few input channels),
//! channel-major (CHW), f32, with an optional per-channel epilogue
//! `y = max(y, scale * y + shift)`: a PReLU with slopes in [0, 1] (as the graph
//! rewrites express it) or a ReLU (scale 0, shift 0).
//!
//! A group's input channels are first copied into zero-padded planes split
//! into `stride` column phases (`phase[r][y][j] = padded[y][j * stride + r]`),
//! so that every tap (input channel, ky, kx) of every output row reads
//! contiguous memory, whatever the stride and wherever the border. Output
//! rows are then computed 32 points at a time, every tap a fused multiply-add
//! into registers (AVX2 + FMA when the CPU has them, detected at run time; a
//! portable loop otherwise).

/// The shapes of one convolution. Output channel `o` reads input channels
/// `g * in_channels / groups ..` of its group `g = o / (out_channels / groups)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    pub in_channels: usize,
    pub out_channels: usize,
    pub groups: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub pad_bottom: usize,
    pub pad_right: usize,
}

impl Geometry {
    pub fn out_h(&self) -> usize {
        (self.in_h + self.pad_top + self.pad_bottom - self.kernel_h) / self.stride_h + 1
    }

    pub fn out_w(&self) -> usize {
        (self.in_w + self.pad_left + self.pad_right - self.kernel_w) / self.stride_w + 1
    }

    /// Whether the kernel fits in the padded input and the strides are not 0.
    pub fn is_valid(&self) -> bool {
        self.stride_h > 0
            && self.stride_w > 0
            && self.kernel_h > 0
            && self.kernel_w > 0
            && self.groups > 0
            && self.in_channels > 0
            && self.in_channels.is_multiple_of(self.groups)
            && self.out_channels.is_multiple_of(self.groups)
            && self.in_h + self.pad_top + self.pad_bottom >= self.kernel_h
            && self.in_w + self.pad_left + self.pad_right >= self.kernel_w
    }

    /// Padded rows and the width of one column phase.
    fn plane(&self) -> (usize, usize) {
        let rows = (self.out_h() - 1) * self.stride_h + self.kernel_h;
        let phase_w = self.out_w() + (self.kernel_w - 1) / self.stride_w;
        (rows, phase_w)
    }

    /// One input channel's phases, in floats.
    fn plane_len(&self) -> usize {
        let (rows, phase_w) = self.plane();
        self.stride_w * rows * phase_w
    }

    /// Stride 1 and no padding: output point (y, x) reads input from (y, x).
    pub fn is_unit_stride_unpadded(&self) -> bool {
        self.stride_h == 1 && self.stride_w == 1 && self.pad_top + self.pad_left + self.pad_bottom + self.pad_right == 0
    }

    /// A 1x1 kernel, stride 1, no padding: planes in, planes out.
    pub fn is_pointwise(&self) -> bool {
        self.kernel_h == 1 && self.kernel_w == 1 && self.is_unit_stride_unpadded()
    }

    /// Taps a output point: a group's input channels times the kernel.
    pub fn taps(&self) -> usize {
        self.in_channels / self.groups * self.kernel_h * self.kernel_w
    }

    /// The scratch one call needs (a group's phases and slack), in floats.
    pub fn scratch_len(&self) -> usize {
        self.in_channels / self.groups * self.plane_len() + SLACK
    }
}

/// Per-channel `y = max(y, scale * y + shift)` after the convolution.
#[derive(Debug, Clone, Copy)]
pub struct MaxAffine<'a> {
    pub scale: &'a [f32],
    pub shift: &'a [f32],
}

/// Runs the convolution: `input` is `in_channels x in_h x in_w`, `weights`
/// `out_channels x (in_channels / groups) x kernel_h x kernel_w`, `bias` one
/// value an output channel, `out` `out_channels x out_h x out_w`. `scratch`
/// is resized as needed.
pub fn direct_conv(
    g: &Geometry,
    input: &[f32],
    weights: &[f32],
    bias: &[f32],
    act: Option<MaxAffine<'_>>,
    out: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    assert!(g.is_valid(), "invalid convolution geometry {g:?}");
    let (oh, ow) = (g.out_h(), g.out_w());
    let (in_plane, taps) = (g.in_h * g.in_w, g.taps());
    assert_eq!(input.len(), g.in_channels * in_plane);
    assert_eq!(weights.len(), g.out_channels * taps);
    assert_eq!(bias.len(), g.out_channels);
    assert_eq!(out.len(), g.out_channels * oh * ow);
    if let Some(a) = act {
        assert!(a.scale.len() == g.out_channels && a.shift.len() == g.out_channels);
    }
    if g.is_pointwise() {
        pointwise_conv(g, input, weights, bias, act, out);
        return;
    }
    scratch.clear();
    scratch.resize(g.scratch_len(), 0.0);
    let (rows, phase_w) = g.plane();
    let plane_len = g.plane_len();
    let (cig, cog) = (g.in_channels / g.groups, g.out_channels / g.groups);
    let kernel = g.kernel_h * g.kernel_w;
    // Where tap (input channel, ky, kx) reads for output row 0; row oy adds
    // oy * stride_h rows.
    let first: Vec<usize> = (0..taps)
        .map(|t| {
            let (ci, ky, kx) = (t / kernel, t % kernel / g.kernel_w, t % g.kernel_w);
            ci * plane_len + ((kx % g.stride_w) * rows + ky) * phase_w + kx / g.stride_w
        })
        .collect();
    let mut offsets = first.clone();
    let mut row = Vec::new();
    // Narrow planes at stride 1: the whole padded plane is one span (output
    // point (oy, ox) at oy * phase_w + ox; the kernel_w - 1 points past each
    // row are dropped), so small planes run as fast as large ones. Wide rows
    // are computed in place, row by row.
    let linear = g.stride_h == 1 && g.stride_w == 1 && ow < 32;
    let mut span = if linear { vec![0.0; oh * phase_w] } else { Vec::new() };
    for group in 0..g.groups {
        for ci in 0..cig {
            let plane = &input[(group * cig + ci) * in_plane..][..in_plane];
            fill_phases(g, plane, &mut scratch[ci * plane_len..][..plane_len], rows, phase_w, &mut row);
        }
        let outputs = group * cog..(group + 1) * cog;
        if !span.is_empty() {
            for o in outputs {
                let epilogue = act.map(|a| (a.scale[o], a.shift[o]));
                span_kernel(scratch, &first, &weights[o * taps..][..taps], bias[o], epilogue, &mut span);
                let dst = &mut out[o * oh * ow..][..oh * ow];
                for (d, s) in dst.chunks_exact_mut(ow).zip(span.chunks_exact(phase_w)) {
                    d.copy_from_slice(&s[..ow]);
                }
            }
            continue;
        }
        // Row by row, every output channel of the group while the row's
        // input is in cache.
        for oy in 0..oh {
            let step = oy * g.stride_h * phase_w;
            for (o, f) in offsets.iter_mut().zip(&first) {
                *o = f + step;
            }
            for o in outputs.clone() {
                let epilogue = act.map(|a| (a.scale[o], a.shift[o]));
                let dst = &mut out[(o * oh + oy) * ow..][..ow];
                span_kernel(scratch, &offsets, &weights[o * taps..][..taps], bias[o], epilogue, dst);
            }
        }
    }
}

/// A 1x1 convolution reads its input in place, a block of points at a time
/// for every output channel of the group, so that the block stays in cache.
fn pointwise_conv(
    g: &Geometry,
    input: &[f32],
    weights: &[f32],
    bias: &[f32],
    act: Option<MaxAffine<'_>>,
    out: &mut [f32],
) {
    const BLOCK: usize = 512;
    let plane = g.in_h * g.in_w;
    let (cig, cog) = (g.in_channels / g.groups, g.out_channels / g.groups);
    let mut offsets = vec![0; cig];
    for group in 0..g.groups {
        let src = &input[group * cig * plane..][..cig * plane];
        for start in (0..plane).step_by(BLOCK) {
            let len = BLOCK.min(plane - start);
            for (ci, o) in offsets.iter_mut().enumerate() {
                *o = ci * plane + start;
            }
            for o in group * cog..(group + 1) * cog {
                let epilogue = act.map(|a| (a.scale[o], a.shift[o]));
                let dst = &mut out[o * plane + start..][..len];
                span_kernel(src, &offsets, &weights[o * cig..][..cig], bias[o], epilogue, dst);
            }
        }
    }
}

/// Floats of zeros after the phases, so that a row's last vector can be
/// read whole.
const SLACK: usize = 64;

/// Copies one channel into its zero-padded column phases (`scratch` is that
/// channel's part). Every channel writes the same positions, so the zeros
/// written once by the caller stay.
fn fill_phases(g: &Geometry, plane: &[f32], scratch: &mut [f32], rows: usize, phase_w: usize, row: &mut Vec<f32>) {
    let s = g.stride_w;
    // One padded input row (stride > 1): zeros around the input columns.
    let padded = (s * phase_w).max(g.pad_left + g.in_w);
    if s > 1 && row.len() != padded {
        row.clear();
        row.resize(padded, 0.0);
    }
    for y in 0..g.in_h {
        let py = y + g.pad_top;
        if py >= rows {
            break;
        }
        let src = &plane[y * g.in_w..][..g.in_w];
        if s == 1 {
            let first = g.pad_left.min(phase_w);
            let n = g.in_w.min(phase_w - first);
            scratch[py * phase_w + first..][..n].copy_from_slice(&src[..n]);
            continue;
        }
        row[g.pad_left..][..g.in_w].copy_from_slice(src);
        if s == 2 {
            let (even, odd) = scratch[py * phase_w..].split_at_mut(rows * phase_w);
            deinterleave2(&row[..2 * phase_w], &mut even[..phase_w], &mut odd[..phase_w]);
            continue;
        }
        for r in 0..s {
            let dst = &mut scratch[(r * rows + py) * phase_w..][..phase_w];
            for (j, d) in dst.iter_mut().enumerate() {
                *d = row[j * s + r];
            }
        }
    }
}

/// `even[j] = src[2j]`, `odd[j] = src[2j + 1]`.
fn deinterleave2(src: &[f32], even: &mut [f32], odd: &mut [f32]) {
    let n = even.len();
    assert!(odd.len() == n && src.len() == 2 * n);
    let mut j = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present; the lengths were checked above.
        j = unsafe { x86::deinterleave2_avx2(src, even, odd) };
    }
    for j in j..n {
        even[j] = src[2 * j];
        odd[j] = src[2 * j + 1];
    }
}

/// What one span of output points reads: `dst[i] = bias + sum_t w[t] *
/// src[offsets[t] + i]`, then the epilogue `(scale, shift)`.
#[derive(Clone, Copy)]
struct Taps<'a> {
    src: &'a [f32],
    offsets: &'a [usize],
    w: &'a [f32],
    bias: f32,
    act: Option<(f32, f32)>,
}

fn span_kernel(src: &[f32], offsets: &[usize], w: &[f32], bias: f32, act: Option<(f32, f32)>, dst: &mut [f32]) {
    let n = dst.len();
    // Every tap reads `n` floats from its offset: check once, index freely after.
    assert!(offsets.iter().all(|&o| o + n <= src.len()));
    let taps = Taps { src, offsets, w, bias, act };
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the features are present and every read is in bounds (above).
        unsafe { x86::span_avx2(taps, dst) };
        return;
    }
    span_portable(taps, dst, 0);
}

fn span_portable(t: Taps<'_>, dst: &mut [f32], from: usize) {
    for (i, d) in dst.iter_mut().enumerate().skip(from) {
        let mut acc = t.bias;
        for (o, k) in t.offsets.iter().zip(t.w) {
            acc += k * t.src[o + i];
        }
        if let Some((scale, shift)) = t.act {
            acc = acc.max(scale * acc + shift);
        }
        *d = acc;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Taps;

    /// # Safety
    /// AVX2 and FMA must be present; `offsets[t] + dst.len() <= src.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn span_avx2(t: Taps<'_>, dst: &mut [f32]) {
        let n = dst.len();
        let mut i = 0;
        // SAFETY: each group reads and writes K * 8 points from i, with
        // i + K * 8 <= n, and every offset + n is within src.
        unsafe {
            while i + 32 <= n {
                group::<4>(t, dst.as_mut_ptr().add(i), i);
                i += 32;
            }
            match (n - i) / 8 {
                3 => group::<3>(t, dst.as_mut_ptr().add(i), i),
                2 => group::<2>(t, dst.as_mut_ptr().add(i), i),
                1 => group::<1>(t, dst.as_mut_ptr().add(i), i),
                _ => {}
            }
            i += (n - i) / 8 * 8;
            // The last few points: one vector into a buffer, if every tap can
            // read 8 floats (the caller's slack makes this the usual case).
            if i < n && t.offsets.iter().all(|o| o + i + 8 <= t.src.len()) {
                let mut tail = [0f32; 8];
                group::<1>(t, tail.as_mut_ptr(), i);
                dst[i..].copy_from_slice(&tail[..n - i]);
                i = n;
            }
        }
        super::span_portable(t, dst, i);
    }

    /// K vectors of output from point i, written from `out`: K independent
    /// chains of multiply-adds.
    ///
    /// # Safety
    /// Reads `src[offsets[t] + i .. + K * 8]` and writes `out[.. K * 8]`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn group<const K: usize>(t: Taps<'_>, out: *mut f32, i: usize) {
        let mut acc = [_mm256_set1_ps(t.bias); K];
        let s = t.src.as_ptr();
        for (o, k) in t.offsets.iter().zip(t.w) {
            let k = _mm256_set1_ps(*k);
            // SAFETY: the caller's contract.
            let p = unsafe { s.add(o + i) };
            for (v, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(k, unsafe { _mm256_loadu_ps(p.add(v * 8)) }, *a);
            }
        }
        let act = t.act.map(|(scale, shift)| (_mm256_set1_ps(scale), _mm256_set1_ps(shift)));
        for (v, a) in acc.into_iter().enumerate() {
            let y = match act {
                Some((scale, shift)) => _mm256_max_ps(a, _mm256_fmadd_ps(scale, a, shift)),
                None => a,
            };
            // SAFETY: the caller's contract.
            unsafe { _mm256_storeu_ps(out.add(v * 8), y) };
        }
    }

    /// Deinterleaves 8 pairs at a time; returns how many pairs it did.
    ///
    /// # Safety
    /// AVX2 must be present; `src.len() == 2 * even.len() == 2 * odd.len()`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn deinterleave2_avx2(src: &[f32], even: &mut [f32], odd: &mut [f32]) -> usize {
        let n = even.len();
        let mut j = 0;
        // SAFETY: j + 8 <= n, so 2j + 16 <= src.len().
        unsafe {
            while j + 8 <= n {
                let a = _mm256_loadu_ps(src.as_ptr().add(2 * j));
                let b = _mm256_loadu_ps(src.as_ptr().add(2 * j + 8));
                // a0 a2 b0 b2 | a4 a6 b4 b6 -> a0 a2 a4 a6 b0 b2 b4 b6
                let e = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
                let o = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
                _mm256_storeu_ps(even.as_mut_ptr().add(j), e);
                _mm256_storeu_ps(odd.as_mut_ptr().add(j), o);
                j += 8;
            }
        }
        j
    }
}

/// Per-channel `x = max(x, scale * x + shift)` in place over a CHW tensor.
pub fn max_affine_in_place(data: &mut [f32], plane: usize, act: MaxAffine<'_>) {
    assert_eq!(data.len(), plane * act.scale.len());
    for ((chunk, scale), shift) in data.chunks_exact_mut(plane.max(1)).zip(act.scale).zip(act.shift) {
        for v in chunk {
            *v = v.max(scale * *v + shift);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_values as values;

    /// The definition, point by point.
    fn reference(g: &Geometry, input: &[f32], w: &[f32], bias: &[f32], act: Option<MaxAffine<'_>>) -> Vec<f32> {
        let (oh, ow) = (g.out_h(), g.out_w());
        let (cig, cog) = (g.in_channels / g.groups, g.out_channels / g.groups);
        let mut out = vec![0.0; g.out_channels * oh * ow];
        for c in 0..g.out_channels {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias[c] as f64;
                    for (t, (ci, ky, kx)) in (0..cig)
                        .flat_map(|ci| (0..g.kernel_h).flat_map(move |ky| (0..g.kernel_w).map(move |kx| (ci, ky, kx))))
                        .enumerate()
                    {
                        let input_channel = c / cog * cig + ci;
                        let iy = (oy * g.stride_h + ky) as isize - g.pad_top as isize;
                        let ix = (ox * g.stride_w + kx) as isize - g.pad_left as isize;
                        if iy < 0 || ix < 0 || iy >= g.in_h as isize || ix >= g.in_w as isize {
                            continue;
                        }
                        let x = input[(input_channel * g.in_h + iy as usize) * g.in_w + ix as usize];
                        acc += (w[c * g.taps() + t] * x) as f64;
                    }
                    let mut y = acc as f32;
                    if let Some(a) = act {
                        y = y.max(a.scale[c] * y + a.shift[c]);
                    }
                    out[(c * oh + oy) * ow + ox] = y;
                }
            }
        }
        out
    }

    fn check(g: Geometry, with_act: bool) {
        let input = values(g.in_channels * g.in_h * g.in_w, 1);
        let w = values(g.out_channels * g.taps(), 2);
        let bias = values(g.out_channels, 3);
        let scale: Vec<f32> = values(g.out_channels, 4).iter().map(|v| v.abs()).collect();
        let shift = values(g.out_channels, 5);
        let act = with_act.then_some(MaxAffine { scale: &scale, shift: &shift });
        let mut out = vec![f32::NAN; g.out_channels * g.out_h() * g.out_w()];
        direct_conv(&g, &input, &w, &bias, act, &mut out, &mut Vec::new());
        let want = reference(&g, &input, &w, &bias, act);
        for (i, (a, b)) in out.iter().zip(&want).enumerate() {
            assert!((a - b).abs() < 1e-4, "{g:?} act={with_act}: point {i}: {a} vs {b}");
        }
    }

    /// Square kernels, equal strides and paddings.
    #[allow(clippy::too_many_arguments)]
    fn square(ci: usize, co: usize, groups: usize, h: usize, w: usize, k: usize, s: usize, p: usize) -> Geometry {
        Geometry {
            in_channels: ci,
            out_channels: co,
            groups,
            in_h: h,
            in_w: w,
            kernel_h: k,
            kernel_w: k,
            stride_h: s,
            stride_w: s,
            pad_top: p,
            pad_left: p,
            pad_bottom: p,
            pad_right: p,
        }
    }

    #[test]
    fn matches_the_definition_across_strides_paddings_and_widths() {
        // Widths around the 8- and 32-point blocks, odd sizes, strides 1-3.
        for (h, w) in [(1, 1), (3, 5), (7, 7), (14, 14), (9, 33), (12, 40), (56, 56), (5, 71)] {
            for (k, s, p) in [(3, 1, 1), (3, 2, 1), (3, 1, 0), (1, 1, 0), (5, 2, 2), (3, 3, 1), (7, 1, 0)] {
                let g = square(3, 3, 3, h, w, k, s, p);
                if g.is_valid() {
                    check(g, false);
                    check(g, true);
                }
            }
        }
    }

    #[test]
    fn asymmetric_padding_and_rectangular_kernels() {
        let g = Geometry {
            kernel_w: 5,
            stride_h: 2,
            pad_top: 0,
            pad_left: 2,
            pad_bottom: 1,
            pad_right: 1,
            ..square(2, 2, 2, 10, 37, 3, 1, 0)
        };
        check(g, false);
        check(g, true);
    }

    #[test]
    fn dense_and_grouped_convolutions() {
        // A first layer (3 -> 5, 3x3, stride 2), a 1x1 layer, two groups.
        for (ci, co, groups, k, s, p, h, w) in [
            (3, 5, 1, 3, 2, 1, 17, 40),
            (4, 6, 1, 1, 1, 0, 9, 35),
            (4, 6, 2, 3, 1, 1, 6, 7),
            (3, 2, 1, 3, 1, 1, 5, 5),
            (5, 3, 1, 1, 1, 0, 23, 31),
            (4, 4, 2, 1, 1, 0, 3, 3),
        ] {
            let g = square(ci, co, groups, h, w, k, s, p);
            check(g, false);
            check(g, true);
        }
    }

    #[test]
    fn deinterleaves_any_length() {
        for n in [0, 1, 7, 8, 9, 16, 57] {
            let src: Vec<f32> = (0..2 * n).map(|i| i as f32).collect();
            let (mut even, mut odd) = (vec![0.0; n], vec![0.0; n]);
            deinterleave2(&src, &mut even, &mut odd);
            assert!(even.iter().enumerate().all(|(j, v)| *v == (2 * j) as f32), "{n}");
            assert!(odd.iter().enumerate().all(|(j, v)| *v == (2 * j + 1) as f32), "{n}");
        }
    }

    #[test]
    fn epilogue_is_prelu_and_relu() {
        let mut x = vec![-2.0, -0.5, 0.0, 1.5, -4.0, 3.0];
        max_affine_in_place(&mut x, 3, MaxAffine { scale: &[0.25, 0.0], shift: &[0.0, 0.0] });
        assert_eq!(x, vec![-0.5, -0.125, 0.0, 1.5, 0.0, 3.0]);
    }
}
