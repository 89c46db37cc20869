//! How the exact index stores its rows: f32 as given, or i8 codes at one
//! gallery-wide scale (a quarter of the memory, and a scan that reads a
//! quarter of the bytes). The scan compares a prepared query with every row;
//! the few rows it keeps are then scored precisely ([`Rows::precise`]: the
//! f32 query against the stored row, so only the gallery side carries
//! quantisation error).
use std::borrow::Cow;

use crate::domain::similarity::{dot, dot_i8};

/// Rows of one length, addressed by position.
pub trait Rows: Send + Sync {
    /// A query as the scan compares it.
    type Query: Sync;
    fn prepare(&self, query: &[f32]) -> Self::Query;
    fn push(&mut self, v: &[f32]);
    /// Copies row `from` over row `to`.
    fn move_row(&mut self, from: usize, to: usize);
    /// Drops the last row.
    fn pop(&mut self);
    /// The scan's score of row `i`: ranks rows as the cosine does.
    fn score(&self, q: &Self::Query, i: usize) -> f32;
    /// The cosine of an f32 query and row `i`, as precisely as stored.
    fn precise(&self, query: &[f32], i: usize) -> f32;
    /// Row `i` as a unit f32 vector.
    fn row(&self, i: usize) -> Cow<'_, [f32]>;
    fn memory_bytes(&self) -> usize;
    /// "f32" or "i8".
    fn storage(&self) -> &'static str;
    /// Room for `more` rows without growing.
    fn reserve(&mut self, more: usize);
}

/// f32 rows, contiguous.
#[derive(Clone, Default)]
pub struct F32Rows {
    dim: usize,
    values: Vec<f32>,
}

impl F32Rows {
    pub fn new(dim: usize) -> Self {
        Self { dim, values: Vec::new() }
    }

    /// Rows given back to back.
    pub fn from_values(dim: usize, values: Vec<f32>) -> Self {
        Self { dim, values }
    }

    fn slice(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }
}

impl Rows for F32Rows {
    type Query = Vec<f32>;

    fn prepare(&self, query: &[f32]) -> Vec<f32> {
        query.to_vec()
    }
    fn push(&mut self, v: &[f32]) {
        self.values.extend_from_slice(v);
    }
    fn move_row(&mut self, from: usize, to: usize) {
        self.values.copy_within(from * self.dim..(from + 1) * self.dim, to * self.dim);
    }
    fn pop(&mut self) {
        self.values.truncate(self.values.len().saturating_sub(self.dim));
    }
    fn score(&self, q: &Vec<f32>, i: usize) -> f32 {
        dot(q, self.slice(i))
    }
    fn precise(&self, query: &[f32], i: usize) -> f32 {
        dot(query, self.slice(i))
    }
    fn row(&self, i: usize) -> Cow<'_, [f32]> {
        Cow::Borrowed(self.slice(i))
    }
    fn memory_bytes(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<f32>()
    }
    fn storage(&self) -> &'static str {
        "f32"
    }
    fn reserve(&mut self, more: usize) {
        self.values.reserve_exact(more * self.dim);
    }
}

/// The i8 code of a unit vector's coordinate `x` at `scale` (codes per unit).
pub fn code(x: f32, scale: f32) -> i8 {
    (x * scale).round().clamp(-127.0, 127.0) as i8
}

/// Codes of a vector.
pub fn quantize(v: &[f32], scale: f32) -> Vec<i8> {
    v.iter().map(|&x| code(x, scale)).collect()
}

/// A scale for i8 codes of these unit vectors (rows of `dim`): the
/// 99.99th-percentile coordinate magnitude becomes 127, so the rare larger
/// ones clip slightly while the rest use the whole range. A unit vector's own
/// largest coordinate would waste most levels: 256-d embeddings rarely reach
/// 0.3. With no sample, four standard deviations of an isotropic coordinate.
pub fn scale_for(sample: &[f32], dim: usize) -> f32 {
    let fallback = 127.0 * (dim.max(1) as f32).sqrt() / 4.0;
    let mut coords: Vec<f32> = sample.iter().map(|x| x.abs()).filter(|x| x.is_finite()).collect();
    if coords.len() < 1000 {
        return fallback;
    }
    coords.sort_by(f32::total_cmp);
    let top = coords[((coords.len() as f64 * 0.9999) as usize).min(coords.len() - 1)];
    if top > 0.0 { 127.0 / top } else { fallback }
}

/// i8 codes at one scale, each row with the norm of its codes.
#[derive(Clone, Default)]
pub struct I8Rows {
    dim: usize,
    scale: f32,
    codes: Vec<i8>,
    /// By row: 1 / the norm of its codes (0 for an all-zero code).
    inv_norms: Vec<f32>,
}

/// A query's codes and the inverse of their norm.
pub struct I8Query {
    codes: Vec<i8>,
    inv_norm: f32,
}

/// 1 / the norm of the codes (0 for an all-zero code).
pub fn inv_norm(codes: &[i8]) -> f32 {
    let n = (dot_i8(codes, codes) as f32).sqrt();
    if n > 0.0 { 1.0 / n } else { 0.0 }
}

/// The cosine of a unit f32 query and codes whose inverse norm is `inv_norm`.
pub fn cosine_to_codes(query: &[f32], codes: &[i8], inv_norm: f32) -> f32 {
    let d: f32 = query.iter().zip(codes).map(|(&q, &c)| q * f32::from(c)).sum();
    d * inv_norm
}

/// Codes back as a unit f32 vector.
pub fn decode(codes: &[i8], inv_norm: f32) -> Vec<f32> {
    codes.iter().map(|&c| f32::from(c) * inv_norm).collect()
}

impl I8Rows {
    pub fn new(dim: usize, scale: f32) -> Self {
        Self { dim, scale, codes: Vec::new(), inv_norms: Vec::new() }
    }

    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// The codes of row `i`.
    pub fn codes(&self, i: usize) -> &[i8] {
        &self.codes[i * self.dim..(i + 1) * self.dim]
    }
}

impl Rows for I8Rows {
    type Query = I8Query;

    fn prepare(&self, query: &[f32]) -> I8Query {
        let codes = quantize(query, self.scale);
        let inv_norm = inv_norm(&codes);
        I8Query { codes, inv_norm }
    }
    fn push(&mut self, v: &[f32]) {
        let codes = quantize(v, self.scale);
        self.inv_norms.push(inv_norm(&codes));
        self.codes.extend_from_slice(&codes);
    }
    fn move_row(&mut self, from: usize, to: usize) {
        self.codes.copy_within(from * self.dim..(from + 1) * self.dim, to * self.dim);
        self.inv_norms[to] = self.inv_norms[from];
    }
    fn pop(&mut self) {
        self.codes.truncate(self.codes.len().saturating_sub(self.dim));
        self.inv_norms.pop();
    }
    fn score(&self, q: &I8Query, i: usize) -> f32 {
        dot_i8(&q.codes, self.codes(i)) as f32 * q.inv_norm * self.inv_norms[i]
    }
    fn precise(&self, query: &[f32], i: usize) -> f32 {
        cosine_to_codes(query, self.codes(i), self.inv_norms[i])
    }
    fn row(&self, i: usize) -> Cow<'_, [f32]> {
        Cow::Owned(decode(self.codes(i), self.inv_norms[i]))
    }
    fn memory_bytes(&self) -> usize {
        self.codes.capacity() + self.inv_norms.capacity() * std::mem::size_of::<f32>()
    }
    fn storage(&self) -> &'static str {
        "i8"
    }
    fn reserve(&mut self, more: usize) {
        self.codes.reserve_exact(more * self.dim);
        self.inv_norms.reserve_exact(more);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gallery::random_unit_vectors;

    #[test]
    fn codes_round_and_clip_at_127() {
        assert_eq!(code(0.5, 100.0), 50);
        assert_eq!(code(0.504, 100.0), 50);
        assert_eq!(code(-0.506, 100.0), -51);
        assert_eq!(code(2.0, 100.0), 127);
        assert_eq!(code(-2.0, 100.0), -127);
    }

    #[test]
    fn the_scale_puts_the_largest_coordinates_at_127() {
        let v = random_unit_vectors(200, 64, 1).concat();
        let s = scale_for(&v, 64);
        let clipped = v.iter().filter(|x| (x.abs() * s) > 127.5).count();
        assert!(clipped <= v.len() / 5000 + 1, "{clipped} of {} clip", v.len());
        assert!(v.iter().any(|x| x.abs() * s > 120.0));
        // Too few coordinates to trust: the isotropic fallback.
        assert_eq!(scale_for(&v[..64], 64), 127.0 * 8.0 / 4.0);
    }

    #[test]
    fn i8_rows_score_like_the_cosine() {
        let dim = 128;
        let v = random_unit_vectors(300, dim, 2);
        let mut rows = I8Rows::new(dim, scale_for(&v.concat(), dim));
        v.iter().for_each(|x| rows.push(x));
        let q = &random_unit_vectors(1, dim, 3)[0];
        let prepared = rows.prepare(q);
        for (i, x) in v.iter().enumerate() {
            let exact = dot(q, x);
            assert!((rows.score(&prepared, i) - exact).abs() < 0.01, "row {i}");
            assert!((rows.precise(q, i) - exact).abs() < 0.005, "row {i}");
            assert!((dot(&rows.row(i), x) - 1.0).abs() < 0.001);
        }
        // Moving and popping keep rows and norms together.
        rows.move_row(299, 0);
        rows.pop();
        assert!((rows.precise(&v[299], 0) - 1.0).abs() < 0.001);
        assert_eq!(rows.codes.len(), 299 * dim);
    }
}
