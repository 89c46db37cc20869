//! Dense 1x1 convolutions (the pointwise layers of SFace and YuNet) as one
//! matrix product `out = W x + b` over channel-major (CHW) planes, with the
//! same optional per-channel epilogue as the direct convolution
//! (`y = max(y, scale * y + shift)`).
//!
//! The input is read in place: rows of `x` are input channels, columns are
//! points, so a strip of [`NR`] points of one channel is a contiguous read
//! and nothing is packed per call. The weights are packed once, when the
//! graph is built, into panels of [`MR`] output channels (`panel[k][r]`,
//! zero-padded), with the bias and the epilogue padded alike. The micro-kernel
//! keeps a 4 x 24 block of outputs in twelve AVX2 registers: per input
//! channel, three loads of `x`, four broadcasts of weights, twelve fused
//! multiply-adds. The output channels of a panel go over a block of
//! [`BLOCK`] points (which stays in L2) before the next block.
//!
//! tract's matrix products pack the input first and, on AVX2, run at about
//! half of the CPU's peak on these shapes (see the README's Performance
//! section); this module is used only where AVX2 and FMA are present and
//! AVX-512 is not.

use super::conv::MaxAffine;

/// Output channels a micro-kernel computes.
pub const MR: usize = 6;
/// Points a micro-kernel computes (three AVX2 vectors).
pub const NR: usize = 16;
/// Points a panel goes over before the next panel.
const BLOCK: usize = 224;
/// Input channels a micro-kernel call goes through before the next strip.
const DEPTH_CHUNK: usize = 256;

/// The constants of one 1x1 convolution, laid out for the micro-kernel.
#[derive(Debug, Clone)]
pub struct Packed {
    rows: usize,
    depth: usize,
    /// `panels x depth x MR`.
    weights: Vec<f32>,
    /// `panels x MR` each.
    bias: Vec<f32>,
    act: Option<(Vec<f32>, Vec<f32>)>,
}

impl PartialEq for Packed {
    fn eq(&self, other: &Self) -> bool {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        self.rows == other.rows
            && self.depth == other.depth
            && bits(&self.weights) == bits(&other.weights)
            && bits(&self.bias) == bits(&other.bias)
            && self.act.as_ref().map(|(s, t)| (bits(s), bits(t))) == other.act.as_ref().map(|(s, t)| (bits(s), bits(t)))
    }
}

impl Eq for Packed {}

fn padded(values: &[f32], len: usize) -> Vec<f32> {
    let mut v = values.to_vec();
    v.resize(len, 0.0);
    v
}

impl Packed {
    /// `weights` is `rows x depth` (output channels x input channels),
    /// `bias` one value a row.
    pub fn new(weights: &[f32], rows: usize, depth: usize, bias: &[f32], act: Option<MaxAffine<'_>>) -> Self {
        assert!(rows > 0 && depth > 0);
        assert_eq!(weights.len(), rows * depth);
        assert_eq!(bias.len(), rows);
        let panels = rows.div_ceil(MR);
        let mut packed = vec![0.0; panels * depth * MR];
        for (r, row) in weights.chunks_exact(depth).enumerate() {
            let panel = &mut packed[r / MR * depth * MR..][..depth * MR];
            for (k, &w) in row.iter().enumerate() {
                panel[k * MR + r % MR] = w;
            }
        }
        let act = act.map(|a| {
            assert!(a.scale.len() == rows && a.shift.len() == rows);
            (padded(a.scale, panels * MR), padded(a.shift, panels * MR))
        });
        Packed { rows, depth, weights: packed, bias: padded(bias, panels * MR), act }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn depth(&self) -> usize {
        self.depth
    }
}

/// Whether this module's kernel is the one to use on this CPU: AVX2 and FMA,
/// and no AVX-512 (where tract's own kernels have twice the width).
pub fn preferred() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && !std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// One micro-kernel call: a panel's constants, `MR x NR` outputs.
#[derive(Clone, Copy)]
struct Tile<'a> {
    depth: usize,
    /// `depth x MR`.
    w: &'a [f32],
    bias: &'a [f32],
    /// Only on the last chunk of input channels.
    act: Option<(&'a [f32], &'a [f32])>,
    /// Add to the outputs (a later chunk of input channels) rather than
    /// start from the bias.
    accumulate: bool,
}

/// `out = W input + b` (then the epilogue): `input` is `depth x points`,
/// `out` `rows x points`, both row-major.
pub fn pointwise(p: &Packed, input: &[f32], points: usize, out: &mut [f32]) {
    assert_eq!(input.len(), p.depth * points);
    assert_eq!(out.len(), p.rows * points);
    if points == 0 {
        return;
    }
    let avx2 = avx2_fma();
    let panels = p.rows.div_ceil(MR);
    let tile = |panel: usize, k: std::ops::Range<usize>| {
        let r0 = panel * MR;
        let last = k.end == p.depth;
        Tile {
            depth: k.len(),
            w: &p.weights[(panel * p.depth + k.start) * MR..][..k.len() * MR],
            bias: &p.bias[r0..][..MR],
            act: p.act.as_ref().filter(|_| last).map(|(s, t)| (&s[r0..r0 + MR], &t[r0..r0 + MR])),
            accumulate: k.start > 0,
        }
    };
    let whole = p.rows / MR;
    // The last strip of the last block, when partial: its columns copied,
    // zero-padded, and its outputs for every panel.
    let mut tail = vec![0f32; p.depth * NR];
    let mut tail_out = vec![0f32; panels * MR * NR];
    // The outputs of the last panel, when partial, over one block.
    let mut edge = vec![0f32; MR * BLOCK];
    for start in (0..points).step_by(BLOCK) {
        let end = (start + BLOCK).min(points);
        let full = start + (end - start) / NR * NR;
        let rem = end - full;
        if rem > 0 {
            for (k, dst) in tail.chunks_exact_mut(NR).enumerate() {
                dst[..rem].copy_from_slice(&input[k * points + full..][..rem]);
            }
        }
        // A chunk of input channels at a time, so that the block's inputs
        // stay in L2 and the panel's weights in L1.
        for k0 in (0..p.depth).step_by(DEPTH_CHUNK) {
            let k1 = (k0 + DEPTH_CHUNK).min(p.depth);
            for panel in 0..panels {
                let t = tile(panel, k0..k1);
                for col in (start..full).step_by(NR) {
                    // SAFETY: reads k1 - k0 rows of NR floats from (k0, col)
                    // with stride `points` (col + NR <= points); reads and
                    // writes MR rows of NR floats from (panel * MR, col) in
                    // `out` (a whole panel) or from `col - start` in `edge`
                    // (MR x BLOCK).
                    unsafe {
                        let x = input.as_ptr().add(k0 * points + col);
                        if panel < whole {
                            micro(avx2, t, x, points, out.as_mut_ptr().add(panel * MR * points + col), points);
                        } else {
                            micro(avx2, t, x, points, edge.as_mut_ptr().add(col - start), BLOCK);
                        }
                    }
                }
                if rem > 0 {
                    // SAFETY: `tail` is depth x NR, `tail_out` panels x MR x NR.
                    unsafe {
                        let out = tail_out.as_mut_ptr().add(panel * MR * NR);
                        micro(avx2, t, tail.as_ptr().add(k0 * NR), NR, out, NR)
                    };
                }
            }
        }
        for r in whole * MR..p.rows {
            let row = &edge[(r - whole * MR) * BLOCK..];
            out[r * points + start..][..full - start].copy_from_slice(&row[..full - start]);
        }
        if rem > 0 {
            for r in 0..p.rows {
                out[r * points + full..][..rem].copy_from_slice(&tail_out[r * NR..][..rem]);
            }
        }
    }
}

fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// # Safety
/// `x` must be readable for `tile.depth` rows of NR floats with stride
/// `ldx`, `c` readable and writable for MR rows of NR floats with stride `ldc`; `avx2`
/// only if the CPU has AVX2 and FMA.
unsafe fn micro(avx2: bool, tile: Tile<'_>, x: *const f32, ldx: usize, c: *mut f32, ldc: usize) {
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        // SAFETY: the caller's contract.
        unsafe { x86::micro_avx2(tile, x, ldx, c, ldc) };
        return;
    }
    let _ = avx2;
    let mut acc = [[0f32; NR]; MR];
    for (r, row) in acc.iter_mut().enumerate() {
        if tile.accumulate {
            // SAFETY: the caller's contract.
            row.copy_from_slice(unsafe { std::slice::from_raw_parts(c.add(r * ldc), NR) });
        } else {
            row.fill(tile.bias[r]);
        }
    }
    for k in 0..tile.depth {
        // SAFETY: the caller's contract.
        let xs = unsafe { std::slice::from_raw_parts(x.add(k * ldx), NR) };
        for (r, row) in acc.iter_mut().enumerate() {
            let w = tile.w[k * MR + r];
            for (a, v) in row.iter_mut().zip(xs) {
                *a += w * v;
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        // SAFETY: the caller's contract.
        let dst = unsafe { std::slice::from_raw_parts_mut(c.add(r * ldc), NR) };
        for (d, &a) in dst.iter_mut().zip(row) {
            *d = match tile.act {
                Some((s, t)) => a.max(s[r] * a + t[r]),
                None => a,
            };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{MR, NR, Tile};

    /// # Safety
    /// AVX2 and FMA must be present; the contract of [`super::micro`].
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn micro_avx2(t: Tile<'_>, x: *const f32, ldx: usize, c: *mut f32, ldc: usize) {
        const V: usize = NR / 8;
        let mut acc = [[_mm256_setzero_ps(); V]; MR];
        for (r, row) in acc.iter_mut().enumerate() {
            for (v, a) in row.iter_mut().enumerate() {
                // SAFETY: the caller's contract.
                *a = if t.accumulate {
                    unsafe { _mm256_loadu_ps(c.add(r * ldc + v * 8)) }
                } else {
                    _mm256_set1_ps(t.bias[r])
                };
            }
        }
        let mut w = t.w.as_ptr();
        let mut x = x;
        // SAFETY (whole loop): `w` walks the panel's depth x MR values, `x`
        // depth rows of NR floats, as the caller guarantees.
        for _ in 0..t.depth {
            let mut xs = [_mm256_setzero_ps(); V];
            for (v, xv) in xs.iter_mut().enumerate() {
                *xv = unsafe { _mm256_loadu_ps(x.add(v * 8)) };
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let b = _mm256_set1_ps(unsafe { *w.add(r) });
                for (a, xv) in row.iter_mut().zip(&xs) {
                    *a = _mm256_fmadd_ps(b, *xv, *a);
                }
            }
            w = unsafe { w.add(MR) };
            x = unsafe { x.add(ldx) };
        }
        for (r, row) in acc.iter().enumerate() {
            let act = t.act.map(|(s, sh)| (_mm256_set1_ps(s[r]), _mm256_set1_ps(sh[r])));
            for (v, &a) in row.iter().enumerate() {
                let y = match act {
                    Some((s, sh)) => _mm256_max_ps(a, _mm256_fmadd_ps(s, a, sh)),
                    None => a,
                };
                // SAFETY: the caller's contract.
                unsafe { _mm256_storeu_ps(c.add(r * ldc + v * 8), y) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn reference(w: &[f32], rows: usize, depth: usize, b: &[f32], act: Option<MaxAffine<'_>>, x: &[f32]) -> Vec<f32> {
        let points = x.len() / depth;
        let mut out = vec![0f32; rows * points];
        for r in 0..rows {
            for p in 0..points {
                let mut acc = f64::from(b[r]);
                for k in 0..depth {
                    acc += f64::from(w[r * depth + k]) * f64::from(x[k * points + p]);
                }
                let mut y = acc as f32;
                if let Some(a) = act {
                    y = y.max(a.scale[r] * y + a.shift[r]);
                }
                out[r * points + p] = y;
            }
        }
        out
    }

    fn check(rows: usize, depth: usize, points: usize, with_act: bool) {
        let (w, b, x) = (values(rows * depth, 1), values(rows, 2), values(depth * points, 3));
        let (scale, shift) = (values(rows, 4).iter().map(|v| v.abs()).collect::<Vec<_>>(), values(rows, 5));
        let act = with_act.then_some(MaxAffine { scale: &scale, shift: &shift });
        let expected = reference(&w, rows, depth, &b, act, &x);
        let packed = Packed::new(&w, rows, depth, &b, act);
        let mut out = vec![f32::NAN; rows * points];
        pointwise(&packed, &x, points, &mut out);
        for (i, (o, e)) in out.iter().zip(&expected).enumerate() {
            let tolerance = 1e-4 * (1.0 + depth as f32).sqrt() * (1.0 + e.abs());
            assert!((o - e).abs() <= tolerance, "{rows}x{depth} over {points} points, at {i}: {o} vs {e}");
        }
    }

    #[test]
    fn matches_the_definition_for_every_remainder() {
        for rows in [1, 3, 4, 5, 8, 13] {
            for points in [1, 7, 15, 16, 17, 49, 196, 223, 224, 225, 449] {
                check(rows, 16, points, false);
            }
        }
    }

    #[test]
    fn deep_products_and_the_epilogue() {
        for (rows, depth, points) in [(64, 32, 300), (128, 512, 49), (12, 1, 30), (4, 1024, 24), (13, 600, 50)] {
            check(rows, depth, points, true);
            check(rows, depth, points, false);
        }
    }

    #[test]
    fn packing_pads_the_last_panel_with_zeros() {
        let (rows, depth) = (MR + 1, 3);
        let w = values(rows * depth, 9);
        let packed = Packed::new(&w, rows, depth, &vec![1.0; rows], None);
        assert_eq!(packed.weights.len(), 2 * depth * MR);
        // Panel 0, input channel 0, row 1.
        assert_eq!(packed.weights[1], w[depth]);
        // Panel 1 holds row MR alone, then zeros.
        let last = &packed.weights[depth * MR..][..MR];
        assert_eq!(last[0], w[MR * depth]);
        assert!(last[1..].iter().all(|&v| v == 0.0));
        assert_eq!(packed.bias[MR..], [[1.0].as_slice(), &[0.0; MR - 1]].concat());
    }
}
