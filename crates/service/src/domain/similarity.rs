//! Vector math on embeddings: L2 normalisation and cosine similarity.

/// Scales `v` to unit length in place. Returns false (and leaves `v`
/// unchanged) when its norm is zero or not finite.
pub fn l2_normalize(v: &mut [f32]) -> bool {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return false;
    }
    v.iter_mut().for_each(|x| *x /= norm);
    true
}

/// Dot product; for unit vectors this is the cosine similarity. Uses AVX2 +
/// FMA when the CPU has them (checked at run time, so the binary runs on any
/// x86-64), otherwise a portable loop the compiler vectorises.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the features the function is compiled for.
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_portable(a, b)
}

/// Eight independent accumulators, so the loop vectorises without `-ffast-math`.
pub fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let chunks = n / 8;
    for i in 0..chunks {
        for k in 0..8 {
            acc[k] += a[i * 8 + k] * b[i * 8 + k];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in chunks * 8..n {
        sum += a[i] * b[i];
    }
    sum
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let chunks = n / 16;
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    for i in 0..chunks {
        // SAFETY: i * 16 + 16 <= n, within both slices.
        unsafe {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i * 16)), _mm256_loadu_ps(pb.add(i * 16)), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i * 16 + 8)), _mm256_loadu_ps(pb.add(i * 16 + 8)), acc1);
        }
    }
    let acc = _mm256_add_ps(acc0, acc1);
    let hi = _mm256_extractf128_ps(acc, 1);
    let lo = _mm256_castps256_ps128(acc);
    let s = _mm_add_ps(hi, lo);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    let mut sum = _mm_cvtss_f32(s);
    for i in chunks * 16..n {
        sum += a[i] * b[i];
    }
    sum
}

/// Dot product of two i8 code vectors (the quantised gallery), exact in
/// i32. AVX2 when the CPU has it (checked at run time), else a portable loop.
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the feature the function is compiled for.
            return unsafe { dot_i8_avx2(a, b) };
        }
    }
    dot_i8_portable(a, b)
}

pub fn dot_i8_portable(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let chunks = n / 32;
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc0 = _mm256_setzero_si256();
    let mut acc1 = _mm256_setzero_si256();
    for i in 0..chunks {
        // SAFETY: i * 32 + 32 <= n, within both slices; unaligned loads.
        unsafe {
            let a0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(pa.add(i * 32).cast()));
            let b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(pb.add(i * 32).cast()));
            let a1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(pa.add(i * 32 + 16).cast()));
            let b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(pb.add(i * 32 + 16).cast()));
            // Pairs of i16 products summed into i32: |127 * 127 * 2| fits.
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(a0, b0));
            acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(a1, b1));
        }
    }
    let acc = _mm256_add_epi32(acc0, acc1);
    let s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
    let mut sum = _mm_cvtsi128_si32(s);
    for i in chunks * 32..n {
        sum += i32::from(a[i]) * i32::from(b[i]);
    }
    sum
}

/// Cosine similarity of two vectors of any length; 0 when either is zero.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let na = dot(a, a).sqrt();
    let nb = dot(b, b).sqrt();
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot(a, b) / (na * nb)).clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_parallel_orthogonal_opposite_and_zero_vectors() {
        assert!((cosine(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 5.0]).abs() < 1e-6);
        assert!((cosine(&[1.0, -1.0], &[-3.0, 3.0]) + 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
        // 45 degrees
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    }

    #[test]
    fn simd_and_portable_dot_products_agree_at_every_length() {
        for n in [0, 1, 7, 8, 15, 16, 17, 31, 128, 129, 513] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.1).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 53 % 13) as f32 - 6.0) * 0.07).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive).abs() < 1e-4, "n={n}");
            assert!((dot_portable(&a, &b) - naive).abs() < 1e-4, "n={n}");
        }
    }

    #[test]
    fn simd_and_portable_i8_dot_products_agree_at_every_length_and_extreme() {
        for n in 0..100usize {
            let a: Vec<i8> = (0..n).map(|i| ((i * 37 + 11) % 255) as i32 as i8).collect();
            let b: Vec<i8> = (0..n).map(|i| ((i * 91 + 5) % 251) as i32 as i8).collect();
            assert_eq!(dot_i8(&a, &b), dot_i8_portable(&a, &b), "length {n}");
        }
        // The extremes do not overflow: 256 products of -128 * -128.
        let x = vec![-128i8; 256];
        assert_eq!(dot_i8(&x, &x), 256 * 128 * 128);
        assert_eq!(dot_i8(&x, &vec![127i8; 256]), -256 * 128 * 127);
    }

    #[test]
    fn normalize_gives_unit_vectors_and_refuses_zero() {
        let mut v = [3.0, 4.0];
        assert!(l2_normalize(&mut v));
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        let mut z = [0.0, 0.0];
        assert!(!l2_normalize(&mut z));
        let mut n = [f32::NAN, 1.0];
        assert!(!l2_normalize(&mut n));
    }
}
