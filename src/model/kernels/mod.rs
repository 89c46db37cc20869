//! visage's own CPU kernels, registered into tract's graphs where tract's
//! generic ones are slow on the models visage runs (issue 12: depthwise
//! convolutions, convolutions with few input channels, the PReLU after each
//! convolution of SFace, YuNet's max pooling, SFace's block-quantized last
//! layer).
//! Features are detected at run time; nothing assumes the build machine's CPU.
pub mod conv;
mod fuse;
pub mod gemm;
mod ops;
pub mod pool;
pub mod qgemv;
pub mod qpointwise;
pub mod quantized_conv;
pub mod quantized_gemm;

pub use fuse::{Fused, fuse};
pub use quantized_conv::keep_quantized_convs;
pub use quantized_gemm::keep_quantized_gemms;

/// Lets tract's ONNX reader build the operators of the kept quantized nodes
/// ([`keep_quantized_gemms`], [`keep_quantized_convs`]).
pub fn register(ops: &mut tract_onnx::model::OnnxOpRegister) {
    quantized_gemm::register(ops);
    quantized_conv::register(ops);
}

/// Whether visage's kernels replace tract's: always, but for
/// `VISAGE_TRACT_KERNELS=tract`, which keeps tract's own for A/B
/// measurements.
pub fn enabled() -> bool {
    std::env::var("VISAGE_TRACT_KERNELS").map_or(true, |v| v != "tract")
}

/// Whether block-quantized 1x1 convolutions are computed in integers
/// ([`quantized_conv`]): where visage's matrix products replace tract's
/// (AVX2 without AVX-512), but for `VISAGE_TRACT_KERNELS=tract` and
/// `VISAGE_TRACT_KERNELS=f32` (which keeps them f32 for A/B measurements).
pub fn integer_convs() -> bool {
    std::env::var("VISAGE_TRACT_KERNELS").map_or(true, |v| v != "tract" && v != "f32") && gemm::preferred()
}

/// Whether the CPU has the AVX2 + FMA paths of these kernels (detected at
/// run time).
fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Reproducible values in [-1, 1] for the kernels' tests.
#[cfg(test)]
fn test_values(n: usize, seed: u32) -> Vec<f32> {
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
