//! A pointwise (1x1) convolution on block-quantized int8 weights, computed
//! in integers: `out[r, p] = bias[r] + Σ_b scale[r, b] Σ_{k in b} (q[r, k] -
//! zero[r, b]) x[k, p]` (ONNX `DequantizeLinear` with `block_size` along the
//! input channels, as SFace's 1x1 layers are shipped).
//!
//! Why integers: on AVX2, `vpmaddwd` (pairs of i16 products summed into
//! i32) sustains more multiply-adds than f32 FMA (`gemm_probe`'s last line
//! measures both), and the weights are small integers already. Where
//! AVX-512 VNNI exists, `vpdpwssd` does the same products and the sum in
//! one instruction (on 256-bit registers: the same tile and layout, and the
//! same exact i32 sums). The input is quantized to i16 on each call with one
//! scale for the whole tensor (`max |x| / 32767`: a relative step of 3e-5 of
//! the largest value); the weights keep the file's own values. Each block's
//! i32 sums are scaled into f32 at the end of the block, so no sum can
//! overflow: `block · 32767 · 255 < 2³¹` for blocks of at most 256 channels.
//!
//! Layout: the input is copied into strips of 16 points, channel pairs
//! interleaved (`[pair][point]` of `(x[2k], x[2k+1])` as one i32); the weights
//! into panels of 6 rows (`[pair][row]`, the same pairing). A 6 x 16 tile of
//! i32 sums stays in twelve registers while a block's pairs go by.
use std::fmt;

use anyhow::{Result, ensure};

use super::avx2_fma;

/// The instructions a call runs on; [`Isa::detect`] picks the best the CPU
/// has, the tests run every one it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Isa {
    Portable,
    /// AVX2 + FMA: `vpmaddwd` then `vpaddd`.
    Avx2,
    /// AVX2 + FMA + AVX-512 VNNI (with VL): `vpdpwssd`.
    Vnni,
}

impl Isa {
    pub(super) fn detect() -> Self {
        if vnni() {
            Isa::Vnni
        } else if avx2_fma() {
            Isa::Avx2
        } else {
            Isa::Portable
        }
    }

    fn simd(self) -> bool {
        self != Isa::Portable
    }
}

/// Whether the CPU has AVX-512 VNNI (and VL, for its 256-bit form) beside
/// AVX2 + FMA (detected at run time).
pub(super) fn vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        avx2_fma()
            && std::arch::is_x86_feature_detected!("avx512vnni")
            && std::arch::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Rows of a panel, points of a strip.
const MR: usize = 6;
const NR: usize = 16;
/// The largest quantized input value.
const X_MAX: f32 = 32767.0;

/// A 1x1 convolution's weights as `(q - zero)` pairs, with their block
/// scales and the biases.
#[derive(Clone, PartialEq)]
pub struct QuantizedPointwise {
    rows: usize,
    depth: usize,
    /// Channel pairs a block (blocks hold an even number of channels).
    block_pairs: usize,
    /// Pairs of the (even-padded) depth.
    pairs: usize,
    /// `[panel][pair][MR]`: `(w[2k] as u16) | (w[2k + 1] << 16)`.
    weights: Vec<i32>,
    /// `[panel][block][MR]`.
    scales: Vec<f32>,
    bias: Vec<f32>,
}

impl fmt::Debug for QuantizedPointwise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QuantizedPointwise({}x{}, blocks of {})", self.rows, self.depth, 2 * self.block_pairs)
    }
}

impl QuantizedPointwise {
    /// `q`: `rows x depth`, row-major; `scale` and `zero`: `rows x
    /// ceil(depth / block)` (the last block may be partial); `bias`: `rows`.
    /// `block` must be even and at most 256.
    pub fn new(
        [rows, depth]: [usize; 2],
        block: usize,
        q: &[i8],
        scale: &[f32],
        zero: &[i8],
        bias: &[f32],
    ) -> Result<Self> {
        ensure!(rows > 0 && depth > 0, "empty quantized convolution {rows}x{depth}");
        ensure!(
            block > 0 && block.is_multiple_of(2) && block <= 256,
            "blocks of {block} channels: need an even number up to 256"
        );
        let blocks = depth.div_ceil(block);
        ensure!(q.len() == rows * depth, "{} quantized values for {rows}x{depth}", q.len());
        ensure!(
            scale.len() == rows * blocks && zero.len() == rows * blocks,
            "{} scales and {} zero points for {rows} rows of {blocks} blocks",
            scale.len(),
            zero.len()
        );
        ensure!(bias.len() == rows, "{} biases for {rows} rows", bias.len());
        let (panels, pairs) = (rows.div_ceil(MR), depth.div_ceil(2));
        let mut weights = vec![0i32; panels * pairs * MR];
        let mut scales = vec![0f32; panels * blocks * MR];
        for r in 0..rows {
            let (panel, lane) = (r / MR, r % MR);
            let w = |k: usize| {
                if k < depth { i32::from(q[r * depth + k]) - i32::from(zero[r * blocks + k / block]) } else { 0 }
            };
            for kp in 0..pairs {
                weights[(panel * pairs + kp) * MR + lane] = (w(2 * kp) & 0xffff) | (w(2 * kp + 1) << 16);
            }
            for b in 0..blocks {
                scales[(panel * blocks + b) * MR + lane] = scale[r * blocks + b];
            }
        }
        Ok(Self { rows, depth, block_pairs: block / 2, pairs, weights, scales, bias: bias.to_vec() })
    }

    /// The same convolution for an input whose channels in `negated` come
    /// with the opposite sign: their weights change sign (exact, as `q -
    /// zero` lies within ±255).
    pub fn negate_inputs(&mut self, negated: &[usize]) -> Result<()> {
        let mut flip = vec![false; self.pairs * 2];
        for &c in negated {
            ensure!(c < self.depth, "input channel {c} of {} negated", self.depth);
            flip[c] = true;
        }
        for (i, w) in self.weights.iter_mut().enumerate() {
            let kp = i / MR % self.pairs;
            let (mut lo, mut hi) = (i32::from(*w as i16), *w >> 16);
            if flip[2 * kp] {
                lo = -lo;
            }
            if flip[2 * kp + 1] {
                hi = -hi;
            }
            *w = (lo & 0xffff) | (hi << 16);
        }
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn depth(&self) -> usize {
        self.depth
    }

    fn blocks(&self) -> usize {
        self.pairs.div_ceil(self.block_pairs)
    }

    /// `out = W input + bias`: `input` is `depth x points`, `out` `rows x
    /// points`, both row-major. `strips` is scratch space, resized here.
    pub fn apply(&self, input: &[f32], points: usize, out: &mut [f32], strips: &mut Vec<i32>) {
        self.apply_on(Isa::detect(), input, points, out, strips);
    }

    /// [`Self::apply`] on the given instructions.
    fn apply_on(&self, isa: Isa, input: &[f32], points: usize, out: &mut [f32], strips: &mut Vec<i32>) {
        let avx2 = isa.simd();
        assert!(input.len() == self.depth * points && out.len() == self.rows * points, "shapes");
        let amax = max_abs(avx2, input);
        // All zeros (or not finite): any scale gives the bias.
        let step = if amax > 0.0 && amax.is_finite() { amax / X_MAX } else { 1.0 };
        let n_strips = points.div_ceil(NR);
        strips.clear();
        strips.resize(n_strips * self.pairs * NR, 0);
        pack_input(avx2, input, self.depth, points, 1.0 / step, strips);
        let (blocks, panels) = (self.blocks(), self.rows.div_ceil(MR));
        // A group of panels whose weights fit in L2 goes by each strip,
        // which stays in L1.
        let group = (128 * 1024 / (self.pairs * MR * 4)).clamp(1, panels);
        let mut tile = [[0f32; NR]; MR];
        for first in (0..panels).step_by(group) {
            for s in 0..n_strips {
                let strip = &strips[s * self.pairs * NR..][..self.pairs * NR];
                for panel in first..(first + group).min(panels) {
                    let w = &self.weights[panel * self.pairs * MR..][..self.pairs * MR];
                    let sc = &self.scales[panel * blocks * MR..][..blocks * MR];
                    tile_sums(isa, w, sc, strip, self.block_pairs, step, &mut tile);
                    let (r0, p0) = (panel * MR, s * NR);
                    for (i, row) in tile.iter().enumerate().take(self.rows - r0) {
                        let r = r0 + i;
                        let n = NR.min(points - p0);
                        for (o, &v) in out[r * points + p0..][..n].iter_mut().zip(row) {
                            *o = v + self.bias[r];
                        }
                    }
                }
            }
        }
    }
}

fn max_abs(avx2: bool, x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        // SAFETY: AVX2 is present.
        return unsafe { x86::max_abs(x) };
    }
    let _ = avx2;
    x.iter().fold(0f32, |m, v| m.max(v.abs()))
}

/// Quantizes `input` (`depth x points`) by `inv_step` into strips of `NR`
/// points, channel pairs interleaved; the strips are zeroed beforehand.
fn pack_input(avx2: bool, input: &[f32], depth: usize, points: usize, inv_step: f32, strips: &mut [i32]) {
    let pairs = depth.div_ceil(2);
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        // SAFETY: AVX2 is present; `strips` holds every strip (checked by
        // the slicing inside).
        unsafe { x86::pack_input(input, depth, points, inv_step, strips) };
        return;
    }
    let _ = avx2;
    let quantize = |k: usize, p: usize| -> i32 {
        if k < depth { (input[k * points + p] * inv_step).round_ties_even() as i32 } else { 0 }
    };
    for p in 0..points {
        let (s, lane) = (p / NR, p % NR);
        for kp in 0..pairs {
            strips[(s * pairs + kp) * NR + lane] = (quantize(2 * kp, p) & 0xffff) | (quantize(2 * kp + 1, p) << 16);
        }
    }
}

/// One panel against one strip: `tile[i][j] = Σ_b scale[b][i] · step ·
/// Σ_{pairs of b} (w pair of row i) · (x pair of point j)`.
fn tile_sums(
    isa: Isa,
    w: &[i32],
    scale: &[f32],
    strip: &[i32],
    block_pairs: usize,
    step: f32,
    tile: &mut [[f32; NR]; MR],
) {
    let pairs = strip.len() / NR;
    assert!(w.len() == pairs * MR && scale.len() == pairs.div_ceil(block_pairs) * MR);
    #[cfg(target_arch = "x86_64")]
    match isa {
        // SAFETY: AVX2 and FMA are present; the lengths are checked above.
        Isa::Avx2 => return unsafe { x86::tile_sums(w, scale, strip, block_pairs, step, tile) },
        // SAFETY: AVX2, FMA and AVX-512 VNNI + VL are present; the lengths
        // are checked above.
        Isa::Vnni => return unsafe { x86::tile_sums_vnni(w, scale, strip, block_pairs, step, tile) },
        Isa::Portable => {}
    }
    let _ = isa;
    let lo = |v: i32| i64::from(v as i16);
    let hi = |v: i32| i64::from((v >> 16) as i16);
    *tile = [[0.0; NR]; MR];
    for (b, first) in (0..pairs).step_by(block_pairs).enumerate() {
        for (i, row) in tile.iter_mut().enumerate() {
            for (j, t) in row.iter_mut().enumerate() {
                let sum: i64 = (first..(first + block_pairs).min(pairs))
                    .map(|kp| {
                        let (wv, xv) = (w[kp * MR + i], strip[kp * NR + j]);
                        lo(wv) * lo(xv) + hi(wv) * hi(xv)
                    })
                    .sum();
                *t += scale[b * MR + i] * step * sum as f32;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{MR, NR};

    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn max_abs(x: &[f32]) -> f32 {
        // SAFETY: the caller guarantees the features and lengths above.
        unsafe {
            let sign = _mm256_set1_ps(-0.0);
            let mut m = _mm256_setzero_ps();
            let mut chunks = x.chunks_exact(8);
            for c in &mut chunks {
                m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(c.as_ptr())));
            }
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), m);
            chunks.remainder().iter().chain(&lanes).fold(0f32, |m, v| m.max(v.abs()))
        }
    }

    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn pack_input(input: &[f32], depth: usize, points: usize, inv_step: f32, strips: &mut [i32]) {
        // SAFETY: the caller guarantees the features and lengths above.
        unsafe {
            let pairs = depth.div_ceil(2);
            let scale = _mm256_set1_ps(inv_step);
            let low = _mm256_set1_epi32(0xffff);
            for kp in 0..pairs {
                let even = &input[2 * kp * points..][..points];
                let odd = (2 * kp + 1 < depth).then(|| &input[(2 * kp + 1) * points..][..points]);
                let mut p = 0;
                while p + 8 <= points {
                    // Rounds to nearest (MXCSR's default mode).
                    let e = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(even[p..].as_ptr()), scale));
                    let o = match odd {
                        Some(odd) => _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(odd[p..].as_ptr()), scale)),
                        None => _mm256_setzero_si256(),
                    };
                    let v = _mm256_or_si256(_mm256_and_si256(e, low), _mm256_slli_epi32::<16>(o));
                    let at = ((p / NR) * pairs + kp) * NR + p % NR;
                    _mm256_storeu_si256(strips[at..][..8].as_mut_ptr().cast(), v);
                    p += 8;
                }
                for p in p..points {
                    let e = (even[p] * inv_step).round_ties_even() as i32;
                    let o = odd.map_or(0, |odd| (odd[p] * inv_step).round_ties_even() as i32);
                    strips[((p / NR) * pairs + kp) * NR + p % NR] = (e & 0xffff) | (o << 16);
                }
            }
        }
    }

    /// One panel against one strip (see the portable `tile_sums`), with
    /// `$acc(a, x, w)` adding the pair products of `x` and `w` to `a`.
    macro_rules! tile_sums {
        ($name:ident, $features:literal, $acc:expr) => {
            /// # Safety
            /// The CPU must have the enabled features; `w` holds `MR`
            /// values a pair of `strip` (`NR` a pair), `scale` `MR` a block.
            #[target_feature(enable = $features)]
            pub unsafe fn $name(
                w: &[i32],
                scale: &[f32],
                strip: &[i32],
                block_pairs: usize,
                step: f32,
                tile: &mut [[f32; NR]; MR],
            ) {
                // SAFETY: the caller guarantees the features and lengths above.
                unsafe {
                    let pairs = strip.len() / NR;
                    let (w, x, scale) = (w.as_ptr(), strip.as_ptr(), scale.as_ptr());
                    let mut f = [[_mm256_setzero_ps(); 2]; MR];
                    let mut first = 0;
                    let mut b = 0;
                    while first < pairs {
                        let last = (first + block_pairs).min(pairs);
                        let mut acc = [[_mm256_setzero_si256(); 2]; MR];
                        for kp in first..last {
                            // SAFETY (all reads): kp < pairs, within the
                            // lengths the caller guarantees.
                            let x0 = _mm256_loadu_si256(x.add(kp * NR).cast());
                            let x1 = _mm256_loadu_si256(x.add(kp * NR + 8).cast());
                            for (i, a) in acc.iter_mut().enumerate() {
                                let wv = _mm256_set1_epi32(*w.add(kp * MR + i));
                                a[0] = $acc(a[0], x0, wv);
                                a[1] = $acc(a[1], x1, wv);
                            }
                        }
                        for (i, (a, f)) in acc.iter().zip(&mut f).enumerate() {
                            let s = _mm256_set1_ps(*scale.add(b * MR + i) * step);
                            f[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a[0]), s, f[0]);
                            f[1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a[1]), s, f[1]);
                        }
                        first = last;
                        b += 1;
                    }
                    for (row, f) in tile.iter_mut().zip(&f) {
                        _mm256_storeu_ps(row.as_mut_ptr(), f[0]);
                        _mm256_storeu_ps(row[8..].as_mut_ptr(), f[1]);
                    }
                }
            }
        };
    }

    tile_sums!(tile_sums, "avx2,fma", |a, x, w| _mm256_add_epi32(a, _mm256_madd_epi16(x, w)));
    tile_sums!(tile_sums_vnni, "avx2,fma,avx512vnni,avx512vl", |a, x, w| _mm256_dpwssd_epi32(a, x, w));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_values;

    fn case(rows: usize, depth: usize, block: usize, points: usize, seed: u32) {
        let blocks = depth.div_ceil(block);
        let q: Vec<i8> = test_values(rows * depth, seed).iter().map(|v| (v * 127.0) as i8).collect();
        let zero: Vec<i8> = test_values(rows * blocks, seed + 1).iter().map(|v| (v * 120.0) as i8).collect();
        let scale: Vec<f32> = test_values(rows * blocks, seed + 2).iter().map(|v| 0.001 + v.abs() * 0.01).collect();
        let bias = test_values(rows, seed + 3);
        // Activations of mixed magnitudes, as after a PReLU.
        let x: Vec<f32> =
            test_values(depth * points, seed + 4).iter().enumerate().map(|(i, v)| v * (1 + i % 7) as f32).collect();
        // The definition in f64, with the weights dequantized.
        let w: Vec<f64> = (0..rows * depth)
            .map(|i| {
                let b = i / depth * blocks + i % depth / block;
                f64::from(scale[b]) * (f64::from(q[i]) - f64::from(zero[b]))
            })
            .collect();
        let m = QuantizedPointwise::new([rows, depth], block, &q, &scale, &zero, &bias).unwrap();
        let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let step = f64::from(amax / X_MAX);
        let present = |isa: &Isa| match isa {
            Isa::Portable => true,
            Isa::Avx2 => avx2_fma(),
            Isa::Vnni => vnni(),
        };
        for isa in [Isa::Portable, Isa::Avx2, Isa::Vnni].into_iter().filter(present) {
            let mut out = vec![f32::NAN; rows * points];
            m.apply_on(isa, &x, points, &mut out, &mut Vec::new());
            for (r, w) in w.chunks(depth).enumerate() {
                // Quantizing each input moves it by at most step / 2: the
                // error is at most Σ_k |w[r, k]| step / 2, plus the f32
                // rounding of the sums.
                let wsum: f64 = w.iter().map(|w| w.abs()).sum();
                let bound = wsum * step * 0.5 * 1.01 + 1e-5 * (1.0 + wsum * f64::from(amax));
                for p in 0..points {
                    let want =
                        f64::from(bias[r]) + (0..depth).map(|k| w[k] * f64::from(x[k * points + p])).sum::<f64>();
                    let got = f64::from(out[r * points + p]);
                    assert!(
                        (got - want).abs() <= bound,
                        "{rows}x{depth}/{block} x {points}, {isa:?}: [{r}, {p}] {got} vs {want} (bound {bound})"
                    );
                }
            }
        }
    }

    #[test]
    fn matches_the_dequantized_product() {
        // Whole panels and strips; partial ones; a partial last block; an
        // odd depth; SFace's first pointwise shape (blocks of 32).
        case(12, 128, 64, 32, 1);
        case(7, 100, 64, 21, 2);
        case(13, 90, 32, 17, 3);
        case(6, 33, 32, 5, 4);
        case(64, 32, 32, 70, 5);
        case(130, 512, 64, 49, 6);
    }

    #[test]
    fn large_blocks_do_not_overflow() {
        // Every weight and input at its extreme: 256 channels of 255 x 32767
        // in one block's i32 sums.
        let (rows, depth, block, points) = (6, 256, 256, 16);
        let q = vec![127i8; rows * depth];
        let zero = vec![-128i8; rows];
        let scale = vec![1e-3f32; rows];
        let x = vec![-1.0f32; depth * points];
        let m = QuantizedPointwise::new([rows, depth], block, &q, &scale, &zero, &[0.0; 6]).unwrap();
        let mut out = vec![0f32; rows * points];
        m.apply(&x, points, &mut out, &mut Vec::new());
        let want = -255.0 * 1e-3 * depth as f32;
        assert!(out.iter().all(|&v| (v - want).abs() < 1e-3 * want.abs()), "{:?} vs {want}", &out[..4]);
    }

    #[test]
    fn negated_inputs_give_the_output_of_the_negated_input() {
        let (rows, depth, block, points) = (7usize, 100usize, 64, 21);
        let blocks = depth.div_ceil(block);
        let q: Vec<i8> = test_values(rows * depth, 11).iter().map(|v| (v * 127.0) as i8).collect();
        let zero: Vec<i8> = test_values(rows * blocks, 12).iter().map(|v| (v * 120.0) as i8).collect();
        let scale: Vec<f32> = test_values(rows * blocks, 13).iter().map(|v| 0.001 + v.abs() * 0.01).collect();
        let bias = test_values(rows, 14);
        let x = test_values(depth * points, 15);
        let negated = [0, 3, 4, 50, 99];
        let mut flipped_x = x.clone();
        for &c in &negated {
            flipped_x[c * points..(c + 1) * points].iter_mut().for_each(|v| *v = -*v);
        }
        let plain = QuantizedPointwise::new([rows, depth], block, &q, &scale, &zero, &bias).unwrap();
        let mut negating = plain.clone();
        negating.negate_inputs(&negated).unwrap();
        let (mut want, mut got) = (vec![0f32; rows * points], vec![0f32; rows * points]);
        plain.apply(&x, points, &mut want, &mut Vec::new());
        negating.apply(&flipped_x, points, &mut got, &mut Vec::new());
        // The same integer sums: only the f32 rounding of the scaling differs.
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
        }
        assert!(negating.clone().negate_inputs(&[depth]).is_err());
    }

    #[test]
    fn zero_input_gives_the_bias() {
        let m =
            QuantizedPointwise::new([2, 4], 4, &[1, 2, 3, 4, 5, 6, 7, 8], &[0.5, 0.5], &[0, 0], &[1.5, -2.0]).unwrap();
        let mut out = vec![0f32; 6];
        m.apply(&[0.0; 12], 3, &mut out, &mut Vec::new());
        assert_eq!(out, [1.5, 1.5, 1.5, -2.0, -2.0, -2.0]);
    }

    #[test]
    fn refuses_inconsistent_constants() {
        assert!(QuantizedPointwise::new([2, 4], 3, &[0; 8], &[1.0; 4], &[0; 4], &[0.0; 2]).is_err());
        assert!(QuantizedPointwise::new([2, 4], 4, &[0; 7], &[1.0; 2], &[0; 2], &[0.0; 2]).is_err());
        assert!(QuantizedPointwise::new([2, 4], 4, &[0; 8], &[1.0; 3], &[0; 2], &[0.0; 2]).is_err());
    }
}
