//! Dense convolutions as shifted matrix products `out = sum_t W_t x_t + b`
//! over channel-major (CHW) planes, with the same optional per-channel
//! epilogue as the direct convolution (`y = max(y, scale * y + shift)`). A
//! 1x1 convolution is one product; each tap `t` of a wider kernel is one
//! offset into the input planes ([`conv`]).
//!
//! Rows of `x` are (tap, input channel), columns are points. The weights are
//! packed once, when the graph is built, into panels of [`MR`] output
//! channels (`panel[d][r]`, zero-padded), with the bias and the epilogue
//! padded alike. The micro-kernel keeps a 6 x 16 block of outputs in twelve
//! AVX2 registers: per row, two loads of `x`, six broadcasts of weights,
//! twelve fused multiply-adds. The rows go by in chunks of [`DEPTH_CHUNK`].
//! For each chunk and block of [`BLOCK`] points, the input is copied into
//! contiguous strips of [`NR`] points (as BLIS packs its B panel): one strip
//! stays in L1 while a group of panels, whose weights stay in L2, goes by.
//! Smaller products (fewer than [`PACK_ROWS`] output channels or a depth
//! under [`PACK_DEPTH`]) read the input in place, a panel at a time.
//!
//! tract's matrix products pack the input first and, on AVX2, run at about
//! half of the CPU's peak on these shapes (see the README's Performance
//! section); this module is used only where AVX2 and FMA are present and
//! AVX-512 is not.

use super::avx2_fma;
use super::conv::MaxAffine;

/// Output channels a micro-kernel computes.
pub const MR: usize = 6;
/// Points a micro-kernel computes (two AVX2 vectors).
pub const NR: usize = 16;
/// Points computed together (packed together, when packed) before the next
/// block.
const BLOCK: usize = 224;
const _: () = assert!(BLOCK.is_multiple_of(NR));
/// Rows (tap, input channel) a micro-kernel call goes through: a packed
/// strip (16 KiB) stays in L1.
const DEPTH_CHUNK: usize = 256;
/// Weights of the panels that go by one strip before the next strip (96
/// KiB): they stay in L2 beside the block's strips (`DEPTH_CHUNK x BLOCK`,
/// 224 KiB).
const PANEL_FLOATS: usize = 24 * 1024;
/// The input is packed into strips only for products with at least this
/// many rows (output channels) and this depth: with fewer rows the copy costs
/// a noticeable share of the few multiply-adds per value, and a shallow strip
/// read in place is a few cache lines (dlib's 32-channel layers took 1.7x as
/// long packed; SFace's 512-channel ones ran at 84-86 GFLOP/s against 77-78).
const PACK_ROWS: usize = 256;
const PACK_DEPTH: usize = 256;

/// The constants of one convolution, laid out for the micro-kernel.
#[derive(Debug, Clone)]
pub struct Packed {
    rows: usize,
    /// Input channels.
    channels: usize,
    /// Kernel positions (1 for a 1x1 convolution).
    taps: usize,
    /// `channels * taps`.
    depth: usize,
    /// `panels x taps x channels x MR`.
    weights: Vec<f32>,
    /// `panels x MR` each.
    bias: Vec<f32>,
    act: Option<(Vec<f32>, Vec<f32>)>,
}

impl PartialEq for Packed {
    fn eq(&self, other: &Self) -> bool {
        fn same(a: &[f32], b: &[f32]) -> bool {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
        }
        let act = match (&self.act, &other.act) {
            (Some((s, t)), Some((u, v))) => same(s, u) && same(t, v),
            (a, b) => a.is_none() && b.is_none(),
        };
        self.rows == other.rows
            && self.channels == other.channels
            && self.taps == other.taps
            && same(&self.weights, &other.weights)
            && same(&self.bias, &other.bias)
            && act
    }
}

impl Eq for Packed {}

fn padded(values: &[f32], len: usize) -> Vec<f32> {
    let mut v = values.to_vec();
    v.resize(len, 0.0);
    v
}

impl Packed {
    /// `weights` is `rows x channels x taps` (a convolution's OIHW kernel:
    /// output channels, input channels, kernel positions), `bias` one value
    /// a row.
    pub fn new(weights: &[f32], [rows, channels, taps]: [usize; 3], bias: &[f32], act: Option<MaxAffine<'_>>) -> Self {
        assert!(rows > 0 && channels > 0 && taps > 0);
        assert_eq!(weights.len(), rows * channels * taps);
        assert_eq!(bias.len(), rows);
        let (panels, depth) = (rows.div_ceil(MR), channels * taps);
        let mut packed = vec![0.0; panels * depth * MR];
        for (r, row) in weights.chunks_exact(depth).enumerate() {
            let panel = &mut packed[r / MR * depth * MR..][..depth * MR];
            for (i, &w) in row.iter().enumerate() {
                let (k, t) = (i / taps, i % taps);
                panel[(t * channels + k) * MR + r % MR] = w;
            }
        }
        let act = act.map(|a| {
            assert!(a.scale.len() == rows && a.shift.len() == rows);
            (padded(a.scale, panels * MR), padded(a.shift, panels * MR))
        });
        Packed { rows, channels, taps, depth, weights: packed, bias: padded(bias, panels * MR), act }
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

/// `out = W input + b` (then the epilogue): `input` is `channels x points`,
/// `out` `rows x points`, both row-major; for a 1x1 convolution.
pub fn pointwise(p: &Packed, input: &[f32], points: usize, out: &mut [f32]) {
    assert_eq!(p.taps, 1);
    assert_eq!(input.len(), p.channels * points);
    conv(p, input, points, &[0], points, out);
}

/// A convolution as a sum of shifted matrix products: output point `i` of
/// row `r` is `b[r] + sum_{t, k} W[r, k, t] * input[k * stride + offsets[t] + i]`,
/// then the epilogue; `out` is `rows x points`. Each tap `t` of a kernel
/// (stride 1, no padding) is one offset into the input planes, and output
/// point `i` is on the input's grid (so the last `kernel_w - 1` points of each
/// row are not outputs; the caller drops them).
pub fn conv(p: &Packed, input: &[f32], stride: usize, offsets: &[usize], points: usize, out: &mut [f32]) {
    conv_points(p, input, stride, offsets, points, None, out);
}

/// Whether products of this size copy their input into strips; only those
/// can take [`conv_gathered`].
pub fn packs(p: &Packed) -> bool {
    p.rows >= PACK_ROWS && p.depth >= PACK_DEPTH
}

impl Packed {
    /// Panel `panel`'s weights for the depth range `d`, with its bias, and
    /// its activation when `d` ends the depth.
    fn tile(&self, panel: usize, d: std::ops::Range<usize>) -> Tile<'_> {
        let r0 = panel * MR;
        Tile {
            depth: d.len(),
            w: &self.weights[(panel * self.depth + d.start) * MR..][..d.len() * MR],
            bias: &self.bias[r0..][..MR],
            act: self.act.as_ref().filter(|_| d.end == self.depth).map(|(s, t)| (&s[r0..r0 + MR], &t[r0..r0 + MR])),
            accumulate: d.start > 0,
        }
    }
}

/// [`conv`] for the output points only: output point `i` reads
/// `input[k * stride + offsets[t] + gather[i]]`, so a padded or strided
/// kernel computes no point of the phases' grid that is not an output (a
/// 4x4 output on a 6-column grid: 16 points instead of 22). The points are
/// gathered into the strips, which only [`packs`] products copy.
pub fn conv_gathered(p: &Packed, input: &[f32], stride: usize, offsets: &[usize], gather: &[usize], out: &mut [f32]) {
    assert!(packs(p), "a product of {} rows and depth {} is read in place", p.rows, p.depth);
    conv_points(p, input, stride, offsets, gather.len(), Some(gather), out);
}

/// How [`conv_points`] walks a product: its panels, where each packed row
/// of the input starts, and whether strips are copied.
struct Layout {
    avx2: bool,
    panels: usize,
    /// Panels of a full `MR` rows.
    whole: usize,
    /// Where each row of the packed depth (tap t, input channel k) starts.
    rows: Vec<usize>,
    /// Whether full strips are read from the input where they lie.
    in_place: bool,
    /// Points per strip buffer row (0: nothing is copied).
    strip_points: usize,
    /// Where row `d` of a packed strip starts.
    packed_rows: Vec<usize>,
    /// Panels that go by one strip before the next.
    group: usize,
}

impl Layout {
    fn new(
        p: &Packed,
        input: &[f32],
        stride: usize,
        offsets: &[usize],
        points: usize,
        gather: Option<&[usize]>,
    ) -> Self {
        // Every read is `k * stride + offsets[t] + i` with i < points (or
        // `gather[i]` in place of `i`).
        let span = gather.map_or(points, |g| g.iter().max().map_or(0, |&m| m + 1));
        let last = (p.channels - 1) * stride + offsets.iter().max().copied().unwrap_or(0) + span;
        assert!(last <= input.len(), "convolution reads {last} floats of {}", input.len());
        // A chunk of the depth over a block of points, strip by strip
        // (`strips x chunk x NR`, the last strip zero-padded).
        let in_place = !packs(p);
        let strip_points = if !in_place {
            BLOCK
        } else if points.is_multiple_of(NR) {
            0
        } else {
            NR
        };
        Self {
            avx2: avx2_fma(),
            panels: p.rows.div_ceil(MR),
            whole: p.rows / MR,
            rows: (0..p.depth).map(|d| offsets[d / p.channels] + d % p.channels * stride).collect(),
            in_place,
            strip_points,
            packed_rows: (0..p.depth.min(DEPTH_CHUNK)).map(|d| d * NR).collect(),
            // As many as keep their weights for a chunk of the depth in L2;
            // read in place, one (its outputs and inputs then go by in
            // order, a few pages at a time).
            group: if in_place { 1 } else { (PANEL_FLOATS / (MR * p.depth.min(DEPTH_CHUNK))).max(1) },
        }
    }
}

fn conv_points(
    p: &Packed,
    input: &[f32],
    stride: usize,
    offsets: &[usize],
    points: usize,
    gather: Option<&[usize]>,
    out: &mut [f32],
) {
    assert_eq!(offsets.len(), p.taps);
    assert_eq!(out.len(), p.rows * points);
    if points == 0 {
        return;
    }
    let Layout { avx2, panels, whole, rows, in_place, strip_points, packed_rows, group } =
        Layout::new(p, input, stride, offsets, points, gather);
    // Kept by the thread between calls: packed, it is 224 KiB, which the
    // allocator would hand back as fresh pages.
    thread_local!(static STRIPS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) });
    let mut strips = STRIPS.take();
    strips.resize(p.depth.min(DEPTH_CHUNK) * strip_points, 0.0);
    // The outputs of the last panel when partial (`MR x BLOCK`), and of the
    // last strip when partial (`panels x MR x NR`).
    let mut edge = vec![0f32; if whole < panels { MR * BLOCK } else { 0 }];
    let mut tail = vec![0f32; if points.is_multiple_of(NR) { 0 } else { panels * MR * NR }];
    let mut tiles = Vec::with_capacity(panels);
    for start in (0..points).step_by(BLOCK) {
        let n = (points - start).min(BLOCK);
        let (full, rem) = (n / NR, n % NR);
        // A last strip of at most half a strip is computed half as wide (7x7
        // layers: 49 points, 3 strips and 1 point).
        let narrow = rem > 0 && rem <= NR / 2;
        for d0 in (0..p.depth).step_by(DEPTH_CHUNK) {
            let d1 = (d0 + DEPTH_CHUNK).min(p.depth);
            let chunk = d1 - d0;
            if in_place {
                // Only the partial strip, zero-padded.
                if rem > 0 {
                    pack_strips(input, &rows[d0..d1], start + full * NR, rem, None, &mut strips[..chunk * NR]);
                }
            } else {
                pack_strips(input, &rows[d0..d1], start, n, gather, &mut strips[..n.div_ceil(NR) * chunk * NR]);
            }
            tiles.clear();
            tiles.extend((0..panels).map(|panel| p.tile(panel, d0..d1)));
            for p0 in (0..panels).step_by(group) {
                for s in 0..n.div_ceil(NR) {
                    // The strip's first point, and where each of its rows is.
                    let (x, at): (&[f32], &[usize]) = match (in_place, s == full) {
                        (true, false) => (&input[start + s * NR..], &rows[d0..d1]),
                        (true, true) => (&strips, &packed_rows[..chunk]),
                        (false, _) => (&strips[s * chunk * NR..], &packed_rows[..chunk]),
                    };
                    for panel in p0..(p0 + group).min(panels) {
                        let (c, ldc) = if s == full {
                            (&mut tail[panel * MR * NR..], NR)
                        } else if panel < whole {
                            (&mut out[panel * MR * points + start + s * NR..], points)
                        } else {
                            (&mut edge[s * NR..], BLOCK)
                        };
                        assert!(c.len() >= (MR - 1) * ldc + NR);
                        // SAFETY: `x` holds NR floats from each of `at`
                        // (checked above for the input, by construction for
                        // the strips), `c` MR rows of NR floats with stride
                        // `ldc` (asserted).
                        unsafe { micro(avx2, narrow && s == full, tiles[panel], x.as_ptr(), at, c.as_mut_ptr(), ldc) };
                    }
                }
            }
        }
        copy_edges(&edge, &tail, p.rows, whole * MR, points, start, full * NR, rem, out);
    }
    STRIPS.set(strips);
}

/// Copies a block's outputs that went to the side buffers into `out` (rows of
/// `points`, the block at `start`): the partial last panel's rows from `edge`
/// (`MR x BLOCK`, its first `strided` points), and every row's partial last
/// strip from `tail` (`rows x NR`, its `rem` points after `strided`).
#[allow(clippy::too_many_arguments)]
fn copy_edges(
    edge: &[f32],
    tail: &[f32],
    rows: usize,
    whole_rows: usize,
    points: usize,
    start: usize,
    strided: usize,
    rem: usize,
    out: &mut [f32],
) {
    for r in whole_rows..rows {
        let row = &edge[(r - whole_rows) * BLOCK..];
        out[r * points + start..][..strided].copy_from_slice(&row[..strided]);
    }
    if rem > 0 {
        for r in 0..rows {
            out[r * points + start + strided..][..rem].copy_from_slice(&tail[r * NR..][..rem]);
        }
    }
}

/// Copies `n` points from `start` of each row (`rows`: where each starts in
/// `input`; point `i` at `gather[i]` past it when given) into strips of
/// [`NR`] points (`dst`: `strips x rows x NR`, the last strip zero-padded), so
/// that the micro-kernel reads one contiguous strip, which stays in L1 while
/// the panels go by.
fn pack_strips(input: &[f32], rows: &[usize], start: usize, n: usize, gather: Option<&[usize]>, dst: &mut [f32]) {
    let depth = rows.len();
    if let Some(gather) = gather {
        for (d, &at) in rows.iter().enumerate() {
            for (s, points) in gather[start..start + n].chunks(NR).enumerate() {
                let to = &mut dst[(s * depth + d) * NR..][..NR];
                for (t, &g) in to.iter_mut().zip(points) {
                    *t = input[at + g];
                }
                to[points.len()..].fill(0.0);
            }
        }
        return;
    }
    for (d, &at) in rows.iter().enumerate() {
        let src = &input[at + start..][..n];
        let mut strips = src.chunks_exact(NR);
        for (s, from) in strips.by_ref().enumerate() {
            dst[(s * depth + d) * NR..][..NR].copy_from_slice(from);
        }
        let from = strips.remainder();
        if !from.is_empty() {
            let to = &mut dst[(n / NR * depth + d) * NR..][..NR];
            to[..from.len()].copy_from_slice(from);
            to[from.len()..].fill(0.0);
        }
    }
}

/// Computes the `MR x NR` outputs of a tile, or only the first `NR / 2`
/// points of each row when `narrow` (the others are then left as they are).
///
/// # Safety
/// `x + rows[d]` must be readable for NR floats for every `d` (`rows` has
/// `tile.depth` entries), `c` readable and writable for MR rows of NR floats
/// with stride `ldc`; `avx2` only if the CPU has AVX2 and FMA.
unsafe fn micro(avx2: bool, narrow: bool, tile: Tile<'_>, x: *const f32, rows: &[usize], c: *mut f32, ldc: usize) {
    debug_assert_eq!(rows.len(), tile.depth);
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        // SAFETY: the caller's contract.
        unsafe {
            if narrow {
                x86::micro_avx2::<1>(tile, x, rows, c, ldc);
            } else {
                x86::micro_avx2::<{ NR / 8 }>(tile, x, rows, c, ldc);
            }
        }
        return;
    }
    let _ = (avx2, narrow);
    let mut acc = [[0f32; NR]; MR];
    for (r, row) in acc.iter_mut().enumerate() {
        if tile.accumulate {
            // SAFETY: the caller's contract.
            row.copy_from_slice(unsafe { std::slice::from_raw_parts(c.add(r * ldc), NR) });
        } else {
            row.fill(tile.bias[r]);
        }
    }
    for (k, &at) in rows.iter().enumerate() {
        // SAFETY: the caller's contract.
        let xs = unsafe { std::slice::from_raw_parts(x.add(at), NR) };
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

    /// The first `8 * V` points of a tile (`V` at most `NR / 8`).
    ///
    /// # Safety
    /// AVX2 and FMA must be present; the contract of [`super::micro`].
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn micro_avx2<const V: usize>(t: Tile<'_>, x: *const f32, rows: &[usize], c: *mut f32, ldc: usize) {
        const { assert!(V >= 1 && V * 8 <= NR) };
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
        // SAFETY (whole loop): `w` walks the panel's depth x MR values, `x`
        // depth rows of NR floats, as the caller guarantees.
        for &at in &rows[..t.depth] {
            let mut xs = [_mm256_setzero_ps(); V];
            for (v, xv) in xs.iter_mut().enumerate() {
                *xv = unsafe { _mm256_loadu_ps(x.add(at + v * 8)) };
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let b = _mm256_set1_ps(unsafe { *w.add(r) });
                for (a, xv) in row.iter_mut().zip(&xs) {
                    *a = _mm256_fmadd_ps(b, *xv, *a);
                }
            }
            w = unsafe { w.add(MR) };
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
    use crate::kernels::test_values as values;

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
        let packed = Packed::new(&w, [rows, depth, 1], &b, act);
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
        // The last two are packed into strips (rows and depth over the bars),
        // over two blocks and a partial strip, a partial panel and chunk.
        let shapes =
            [(64, 32, 300), (128, 512, 49), (12, 1, 30), (4, 1024, 24), (13, 600, 50), (256, 256, 16), (263, 600, 449)];
        for (rows, depth, points) in shapes {
            check(rows, depth, points, true);
            check(rows, depth, points, false);
        }
    }

    /// A kernel wider than 1x1 as taps: outputs on the input's grid.
    fn check_taps(rows: usize, channels: usize, [h, w]: [usize; 2], [kh, kw]: [usize; 2]) {
        let taps = kh * kw;
        let (wt, b, x) = (values(rows * channels * taps, 6), values(rows, 7), values(channels * h * w, 8));
        let (oh, ow) = (h - kh + 1, w - kw + 1);
        let packed = Packed::new(&wt, [rows, channels, taps], &b, None);
        let offsets: Vec<usize> = (0..taps).map(|t| t / kw * w + t % kw).collect();
        let points = (oh - 1) * w + ow;
        let mut grid = vec![f32::NAN; rows * points];
        conv(&packed, &x, h * w, &offsets, points, &mut grid);
        for r in 0..rows {
            for (oy, ox) in (0..oh).flat_map(|y| (0..ow).map(move |x| (y, x))) {
                let mut acc = f64::from(b[r]);
                for k in 0..channels {
                    for (ky, kx) in (0..kh).flat_map(|y| (0..kw).map(move |x| (y, x))) {
                        let weight = wt[(r * channels + k) * taps + ky * kw + kx];
                        acc += f64::from(weight) * f64::from(x[k * h * w + (oy + ky) * w + ox + kx]);
                    }
                }
                let got = grid[r * points + oy * w + ox];
                let tolerance = 1e-4 * (1.0 + (channels * taps) as f32).sqrt() * (1.0 + acc.abs() as f32);
                assert!((got - acc as f32).abs() <= tolerance, "{rows}x{channels} {kh}x{kw} at {r},{oy},{ox}");
            }
        }
    }

    #[test]
    fn taps_make_a_convolution_on_the_input_grid() {
        check_taps(8, 3, [9, 11], [3, 3]);
        check_taps(7, 40, [20, 20], [3, 3]);
        check_taps(12, 300, [12, 13], [3, 3]);
        check_taps(6, 5, [16, 5], [2, 5]);
        check_taps(13, 2, [30, 40], [1, 3]);
        check_taps(PACK_ROWS + 1, 30, [12, 13], [3, 3]);
    }

    #[test]
    fn packing_pads_the_last_panel_with_zeros() {
        let (rows, depth) = (MR + 1, 3);
        let w = values(rows * depth, 9);
        let packed = Packed::new(&w, [rows, depth, 1], &vec![1.0; rows], None);
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
