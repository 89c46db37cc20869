//! A fully connected layer on block-quantized int8 weights, kept quantized:
//! `y = x · Wᵀ + bias` with `W[j, k] = (q[j, k] - zero[j, b]) * scale[j, b]`
//! for the block `b = k / block` of row `j` (ONNX `DequantizeLinear` with
//! `block_size`, along the input axis).
//!
//! SFace's last layer is such a product of one 50,176-vector with a 128 x
//! 50,176 matrix: as f32 it reads 25.7 MB a face and is bound by memory;
//! kept as int8 it reads 6.4 MB, with the file's own values (nothing is
//! re-quantized). Per row and block the kernel sums `q · x` and subtracts
//! `zero * Σx` once: `y[j] = bias[j] + Σ_b scale[j,b] (Σ_k q[j,k] x[k] -
//! zero[j,b] Σ_k x[k])`. Only the order of the f32 additions differs from
//! dequantizing first.
use std::fmt;

use anyhow::{Result, ensure};

use super::avx2_fma;

/// The quantized matrix (`rows x depth`, row-major) and its constants.
#[derive(Clone, PartialEq)]
pub struct QuantizedRows {
    rows: usize,
    depth: usize,
    block: usize,
    q: Vec<i8>,
    /// `rows x blocks`.
    scale: Vec<f32>,
    /// `scale * zero`, `rows x blocks`.
    scaled_zero: Vec<f32>,
    bias: Vec<f32>,
}

impl fmt::Debug for QuantizedRows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QuantizedRows({}x{}, blocks of {})", self.rows, self.depth, self.block)
    }
}

impl QuantizedRows {
    /// `q`: `rows x depth`; `scale` and `zero`: `rows x ceil(depth / block)`
    /// (the last block may be partial); `bias`: `rows`.
    pub fn new(
        [rows, depth]: [usize; 2],
        block: usize,
        q: Vec<i8>,
        scale: &[f32],
        zero: &[i8],
        bias: Vec<f32>,
    ) -> Result<Self> {
        ensure!(rows > 0 && depth > 0 && block > 0, "empty quantized matrix {rows}x{depth}, block {block}");
        let blocks = depth.div_ceil(block);
        ensure!(q.len() == rows * depth, "{} quantized values for {rows}x{depth}", q.len());
        ensure!(
            scale.len() == rows * blocks && zero.len() == rows * blocks,
            "{} scales and {} zero points for {rows} rows of {blocks} blocks",
            scale.len(),
            zero.len()
        );
        ensure!(bias.len() == rows, "{} biases for {rows} rows", bias.len());
        let scaled_zero = scale.iter().zip(zero).map(|(&s, &z)| s * f32::from(z)).collect();
        Ok(Self { rows, depth, block, q, scale: scale.to_vec(), scaled_zero, bias })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn depth(&self) -> usize {
        self.depth
    }

    fn blocks(&self) -> usize {
        self.depth.div_ceil(self.block)
    }

    /// `y = x · Wᵀ + bias` for one input vector (`x`: `depth`, `y`: `rows`).
    /// `block_sums` is scratch space, resized here.
    pub fn apply(&self, x: &[f32], y: &mut [f32], block_sums: &mut Vec<f32>) {
        assert!(x.len() == self.depth && y.len() == self.rows, "qgemv of {} into {}", x.len(), y.len());
        block_sums.clear();
        block_sums.extend(x.chunks(self.block).map(|c| c.iter().sum::<f32>()));
        let (blocks, depth) = (self.blocks(), self.depth);
        for (j, out) in y.iter_mut().enumerate() {
            let zero_terms = self.scaled_zero[j * blocks..][..blocks].iter().zip(block_sums.iter());
            *out = self.bias[j] - zero_terms.map(|(sz, xs)| sz * xs).sum::<f32>();
        }
        let avx2 = avx2_fma();
        let mut j = 0;
        // Rows by fours share each load of `x`, which stays in L2 while the
        // int8 rows stream by once.
        while j < self.rows {
            let r = if self.rows - j >= ROWS { ROWS } else { 1 };
            let q = |i: usize| &self.q[(j + i.min(r - 1)) * depth..][..depth];
            let scale = |i: usize| &self.scale[(j + i.min(r - 1)) * blocks..][..blocks];
            let dots =
                block_dots(avx2, [q(0), q(1), q(2), q(3)], x, [scale(0), scale(1), scale(2), scale(3)], self.block);
            for (out, dot) in y[j..j + r].iter_mut().zip(dots) {
                *out += dot;
            }
            j += r;
        }
    }
}

/// Rows computed together.
const ROWS: usize = 4;

/// Whether this CPU has the vector kernel (AVX2 and FMA). Elsewhere the
/// portable loop is slower than tract's f32 product (which has NEON kernels
/// on ARM), so the layer is left to tract there.
pub fn fast() -> bool {
    avx2_fma()
}

/// `Σ_b scale[r][b] Σ_{k in b} q[r][k] x[k]` for each of the rows `r`.
fn block_dots(avx2: bool, q: [&[i8]; ROWS], x: &[f32], scale: [&[f32]; ROWS], block: usize) -> [f32; ROWS] {
    assert!(q.iter().zip(&scale).all(|(q, s)| q.len() == x.len() && s.len() == x.len().div_ceil(block)));
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        // SAFETY: AVX2 and FMA are present; the lengths are checked above.
        return unsafe { x86::block_dots_avx2(q, x, scale, block) };
    }
    let _ = avx2;
    std::array::from_fn(|r| {
        q[r].chunks(block)
            .zip(x.chunks(block))
            .zip(scale[r])
            .map(|((q, x), s)| s * q.iter().zip(x).map(|(&q, &x)| f32::from(q) * x).sum::<f32>())
            .sum()
    })
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::ROWS;

    /// # Safety
    /// The CPU must have AVX2 and FMA; every `q[r]` is as long as `x`, every
    /// `scale[r]` has a value for each block of `block` values of `x`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn block_dots_avx2(q: [&[i8]; ROWS], x: &[f32], scale: [&[f32]; ROWS], block: usize) -> [f32; ROWS] {
        let xp = x.as_ptr();
        let qp = q.map(<[i8]>::as_ptr);
        let mut total = [_mm256_setzero_ps(); ROWS];
        let mut tail = [0f32; ROWS];
        for (b, start) in (0..x.len()).step_by(block).enumerate() {
            let len = block.min(x.len() - start);
            let end = start + len / 8 * 8;
            let mut acc = [_mm256_setzero_ps(); ROWS];
            let mut p = start;
            while p < end {
                // SAFETY: `p + 8 <= end <= x.len()`, and every row is as long as `x`.
                let xv = unsafe { _mm256_loadu_ps(xp.add(p)) };
                for r in 0..ROWS {
                    let qv = unsafe { _mm256_cvtepi8_epi32(_mm_loadl_epi64(qp[r].add(p).cast())) };
                    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(qv), xv, acc[r]);
                }
                p += 8;
            }
            for r in 0..ROWS {
                let s = scale[r][b];
                total[r] = _mm256_fmadd_ps(_mm256_set1_ps(s), acc[r], total[r]);
                if end < start + len {
                    let rest = q[r][end..start + len].iter().zip(&x[end..start + len]);
                    tail[r] += s * rest.map(|(&q, &x)| f32::from(q) * x).sum::<f32>();
                }
            }
        }
        std::array::from_fn(|r| {
            let mut lanes = [0f32; 8];
            // SAFETY: `lanes` holds 8 floats.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), total[r]) };
            lanes.iter().sum::<f32>() + tail[r]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_values as values;

    /// Dequantize, then multiply: the definition, in f64, with the sum of the
    /// terms' magnitudes (what bounds an f32 sum's rounding).
    fn reference(m: &QuantizedRows, zero: &[i8], x: &[f32]) -> Vec<(f32, f64)> {
        let blocks = m.blocks();
        (0..m.rows)
            .map(|j| {
                let terms = (0..m.depth).map(|k| {
                    let b = j * blocks + k / m.block;
                    let w = (f64::from(m.q[j * m.depth + k]) - f64::from(zero[b])) * f64::from(m.scale[b]);
                    w * f64::from(x[k])
                });
                let (sum, magnitude) = terms.fold((0.0, 0.0), |(s, a), t| (s + t, a + t.abs()));
                ((f64::from(m.bias[j]) + sum) as f32, magnitude + f64::from(m.bias[j].abs()))
            })
            .collect()
    }

    fn close(a: f32, (b, magnitude): (f32, f64)) -> bool {
        f64::from((a - b).abs()) <= 1e-6 * (1.0 + magnitude)
    }

    fn case(rows: usize, depth: usize, block: usize) {
        let blocks = depth.div_ceil(block);
        let q: Vec<i8> =
            values(rows * depth, 1).iter().map(|v| (v * 127.5).floor().clamp(-128.0, 127.0) as i8).collect();
        let scale: Vec<f32> = values(rows * blocks, 2).iter().map(|v| 0.01 + v.abs() * 0.02).collect();
        let zero: Vec<i8> = values(rows * blocks, 3).iter().map(|v| (v * 100.0) as i8).collect();
        let (bias, x) = (values(rows, 4), values(depth, 5));
        let m = QuantizedRows::new([rows, depth], block, q, &scale, &zero, bias).unwrap();
        let expected = reference(&m, &zero, &x);
        let mut got = vec![f32::NAN; rows];
        m.apply(&x, &mut got, &mut Vec::new());
        for (j, (&a, &b)) in got.iter().zip(&expected).enumerate() {
            assert!(close(a, b), "{rows}x{depth}/{block} row {j}: {a} vs {b:?}");
        }
        // The portable path gives the same.
        if rows >= ROWS {
            let q = |r: usize| &m.q[r * depth..][..depth];
            let s = |r: usize| &m.scale[r * blocks..][..blocks];
            let fast = block_dots(avx2_fma(), [q(0), q(1), q(2), q(3)], &x, [s(0), s(1), s(2), s(3)], block);
            let portable = block_dots(false, [q(0), q(1), q(2), q(3)], &x, [s(0), s(1), s(2), s(3)], block);
            for (j, (&a, &b)) in fast.iter().zip(&portable).enumerate() {
                let bound = expected[j].1 - f64::from(m.bias[j].abs());
                assert!(close(a, (b, bound)), "{rows}x{depth}/{block} row {j}: {a} vs portable {b}");
            }
        }
    }

    #[test]
    fn quantized_product_matches_dequantize_then_multiply() {
        case(4, 256, 64); // whole blocks of whole vectors
        case(7, 256, 64); // a group of four rows and three single ones
        case(3, 200, 64); // a partial last block
        case(5, 77, 20); // blocks that are not a multiple of 8 (and a tail)
        case(2, 7, 64); // one block shorter than a vector
        case(128, 50_176, 64); // SFace's fc1
    }

    #[test]
    fn inconsistent_constants_are_refused() {
        assert!(QuantizedRows::new([2, 10], 4, vec![0; 20], &[1.0; 5], &[0; 6], vec![0.0; 2]).is_err());
        assert!(QuantizedRows::new([2, 10], 4, vec![0; 19], &[1.0; 6], &[0; 6], vec![0.0; 2]).is_err());
        assert!(QuantizedRows::new([2, 10], 0, vec![0; 20], &[], &[], vec![0.0; 2]).is_err());
    }
}
