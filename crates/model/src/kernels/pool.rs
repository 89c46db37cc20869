//! 2x2 max pooling with stride 2 (YuNet's down-sampling), channel-major
//! (CHW), f32; odd trailing rows and columns are dropped (ONNX floor mode).

/// `input` is `channels x h x w`; `out` is `channels x h/2 x w/2`.
pub fn max_pool_2x2(channels: usize, h: usize, w: usize, input: &[f32], out: &mut [f32]) {
    let (oh, ow) = (h / 2, w / 2);
    assert_eq!(input.len(), channels * h * w);
    assert_eq!(out.len(), channels * oh * ow);
    for c in 0..channels {
        let plane = &input[c * h * w..][..h * w];
        for oy in 0..oh {
            let r0 = &plane[2 * oy * w..][..2 * ow];
            let r1 = &plane[(2 * oy + 1) * w..][..2 * ow];
            let dst = &mut out[(c * oh + oy) * ow..][..ow];
            let mut x = 0;
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 is present; r0, r1 hold 2 * dst.len() values.
                x = unsafe { x86::row_avx2(r0, r1, dst) };
            }
            for x in x..ow {
                dst[x] = r0[2 * x].max(r0[2 * x + 1]).max(r1[2 * x]).max(r1[2 * x + 1]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// 8 outputs at a time; returns how many it wrote.
    ///
    /// # Safety
    /// AVX2 must be present; `r0.len() == r1.len() == 2 * dst.len()`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn row_avx2(r0: &[f32], r1: &[f32], dst: &mut [f32]) -> usize {
        let n = dst.len();
        let mut x = 0;
        // SAFETY: x + 8 <= n, so 2x + 16 <= r0.len() == r1.len().
        unsafe {
            while x + 8 <= n {
                let a = _mm256_max_ps(_mm256_loadu_ps(r0.as_ptr().add(2 * x)), _mm256_loadu_ps(r1.as_ptr().add(2 * x)));
                let b = _mm256_max_ps(
                    _mm256_loadu_ps(r0.as_ptr().add(2 * x + 8)),
                    _mm256_loadu_ps(r1.as_ptr().add(2 * x + 8)),
                );
                // Pairs side by side: evens and odds, then back in order.
                let m = _mm256_max_ps(_mm256_shuffle_ps(a, b, 0x88), _mm256_shuffle_ps(a, b, 0xDD));
                let m = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(m), 0xD8));
                _mm256_storeu_ps(dst.as_mut_ptr().add(x), m);
                x += 8;
            }
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_definition_with_odd_sizes() {
        for (c, h, w) in [(2, 4, 4), (3, 7, 9), (1, 2, 34), (2, 33, 65), (1, 1, 5)] {
            let input: Vec<f32> = (0..c * h * w).map(|i| ((i * 7919) % 1009) as f32 - 500.0).collect();
            let (oh, ow) = (h / 2, w / 2);
            let mut out = vec![f32::NAN; c * oh * ow];
            max_pool_2x2(c, h, w, &input, &mut out);
            for ch in 0..c {
                for y in 0..oh {
                    for x in 0..ow {
                        let at = |yy: usize, xx: usize| input[(ch * h + yy) * w + xx];
                        let want = at(2 * y, 2 * x)
                            .max(at(2 * y, 2 * x + 1))
                            .max(at(2 * y + 1, 2 * x))
                            .max(at(2 * y + 1, 2 * x + 1));
                        assert_eq!(out[(ch * oh + y) * ow + x], want, "{c}x{h}x{w} at {ch},{y},{x}");
                    }
                }
            }
        }
    }
}
