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
/// ([`quantized_conv`]): on AVX2 without AVX-512 (where visage's matrix
/// products replace tract's), and where AVX-512 VNNI exists. Measured on
/// Zen 4: SFace 11.5-12.9 ms against 18.3-19.8 ms with tract's AVX-512 f32
/// products; YuNet at 640x640 13.3-13.4 ms with its layers from 16 input
/// channels in integers, against 16.7-18.5 ms from 64. AVX-512 without VNNI
/// (Skylake-SP) keeps tract's f32 products (unmeasured).
/// `VISAGE_TRACT_KERNELS=tract` and `VISAGE_TRACT_KERNELS=f32` keep them
/// f32, `VISAGE_TRACT_KERNELS=integer` takes them wherever AVX2 exists (for
/// A/B measurements).
pub fn integer_convs() -> bool {
    match std::env::var("VISAGE_TRACT_KERNELS").as_deref() {
        Ok("tract" | "f32") => false,
        Ok("integer") => avx2_fma(),
        _ => gemm::preferred() || qpointwise::vnni(),
    }
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
    use rand::{Rng as _, SeedableRng as _};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(u64::from(seed));
    // Multiples of 1/1000, so that sums of a few products stay exact in f32.
    (0..n).map(|_| rng.random_range(0..=2000) as f32 / 1000.0 - 1.0).collect()
}
