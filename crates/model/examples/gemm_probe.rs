//! The pointwise kernel (crates/model/src/kernels/gemm.rs) alone on the shapes of
//! SFace's and YuNet's 1x1 convolutions, in GFLOP/s (best of 100 calls), to
//! compare with the CPU's peak: with the data in cache, and "cold", after
//! 64 MiB were written (as in a model, where the previous layers evicted the
//! weights). Then SFace's last layer (128 x 50,176) as the block-quantized
//! int8 product (crates/model/src/kernels/qgemv.rs), in GB/s of weights read.
//! Last, the rate of multiply-adds one core sustains in registers: f32 FMA
//! against the integer forms AVX2 has (i16 pairs with `vpmaddwd`; u8 x i8
//! pairs with `vpmaddubsw`, widened with `vpmaddwd`), which says what an
//! integer kernel could gain over the f32 one on this CPU.
//! A development tool for speed
//! work, not part of the service; print the CPU beside its figures:
//!
//!     grep -m1 'model name' /proc/cpuinfo
//!     cargo run --release -p visage-model --example gemm_probe
use std::time::Instant;

use visage_model::kernels::gemm::{Packed, pointwise};
use visage_model::kernels::qgemv::QuantizedRows;
use visage_model::kernels::qpointwise::QuantizedPointwise;

fn main() {
    // (output channels, input channels, points)
    for (o, k, n) in [(64, 32, 12544), (128, 128, 3136), (512, 512, 196), (1024, 1024, 49), (64, 16, 102400)] {
        let w: Vec<f32> = (0..o * k).map(|i| (i % 97) as f32 * 0.01).collect();
        let x: Vec<f32> = (0..k * n).map(|i| (i % 89) as f32 * 0.01).collect();
        let p = Packed::new(&w, [o, k, 1], &vec![0.1; o], None);
        let mut out = vec![0f32; o * n];
        let mut flush = vec![0u8; 64 << 20];
        let flops = 2.0 * (o * k * n) as f64;
        let mut line = format!("{o:>5} x {k:>5} x {n:>6}:");
        for cold in [false, true] {
            let mut best = f64::MAX;
            for i in 0..100 {
                if cold {
                    flush.fill(i as u8);
                }
                let t = Instant::now();
                pointwise(&p, std::hint::black_box(&x), n, &mut out);
                best = best.min(t.elapsed().as_secs_f64());
            }
            let what = if cold { "cold" } else { "in cache" };
            line += &format!(" {what} {:.3} ms, {:.1} GFLOP/s;", best * 1e3, flops / best / 1e9);
        }
        println!("{line}");
    }
    quantized_fc1();
    quantized_pointwise();
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the features were detected just above.
        unsafe { multiply_add_rates() };
    }
}

/// SFace's 1x1 layers (output channels, input channels, points): the f32
/// kernel against the integer one (int8 weights in blocks of 64 channels,
/// i16 inputs), best of 50 calls each, alternating.
fn quantized_pointwise() {
    let shapes: [(usize, usize, usize); 9] = [
        (64, 32, 12544),
        (128, 64, 3136),
        (128, 128, 3136),
        (256, 128, 784),
        (256, 256, 784),
        (512, 256, 196),
        (512, 512, 196),
        (1024, 512, 49),
        (1024, 1024, 49),
    ];
    let (mut total_f32, mut total_i16) = (0.0, 0.0);
    for (o, k, n) in shapes {
        let block = k.min(64);
        let blocks = k.div_ceil(block);
        let q: Vec<i8> = (0..o * k).map(|i| ((i * 7919) % 255) as u8 as i8).collect();
        let zero: Vec<i8> = (0..o * blocks).map(|i| (i % 50) as i8).collect();
        let scale: Vec<f32> = (0..o * blocks).map(|i| 0.001 + (i % 13) as f32 * 1e-4).collect();
        let w: Vec<f32> = (0..o * k)
            .map(|i| {
                scale[i / k * blocks + i % k / block]
                    * f32::from(i16::from(q[i]) - i16::from(zero[i / k * blocks + i % k / block]))
            })
            .collect();
        let x: Vec<f32> = (0..k * n).map(|i| (i % 89) as f32 * 0.01 - 0.3).collect();
        let p = Packed::new(&w, [o, k, 1], &vec![0.1; o], None);
        let m = QuantizedPointwise::new([o, k], block, &q, &scale, &zero, &vec![0.1; o]).expect("consistent constants");
        let (mut out, mut strips) = (vec![0f32; o * n], Vec::new());
        let (mut best_f32, mut best_i16) = (f64::MAX, f64::MAX);
        for _ in 0..50 {
            let t = Instant::now();
            pointwise(&p, std::hint::black_box(&x), n, &mut out);
            best_f32 = best_f32.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            m.apply(std::hint::black_box(&x), n, &mut out, &mut strips);
            best_i16 = best_i16.min(t.elapsed().as_secs_f64());
        }
        total_f32 += best_f32;
        total_i16 += best_i16;
        let gmacs = (o * k * n) as f64 / 1e9;
        println!(
            "1x1 {o:>5} x {k:>5} x {n:>6}: f32 {:.3} ms ({:.1} GMAC/s), int8 x i16 {:.3} ms ({:.1} GMAC/s), {:.2}x",
            best_f32 * 1e3,
            gmacs / best_f32,
            best_i16 * 1e3,
            gmacs / best_i16,
            best_f32 / best_i16
        );
    }
    println!(
        "SFace's 1x1 layers: f32 {:.2} ms, int8 x i16 {:.2} ms, {:.2}x",
        total_f32 * 1e3,
        total_i16 * 1e3,
        total_f32 / total_i16
    );
}

/// SFace's fc1: 128 rows of 50,176 int8 weights in blocks of 64.
fn quantized_fc1() {
    let (rows, depth, block) = (128, 50_176, 64);
    let blocks = depth / block;
    let q: Vec<i8> = (0..rows * depth).map(|i| ((i * 7919) % 255) as u8 as i8).collect();
    let m = QuantizedRows::new(
        [rows, depth],
        block,
        q,
        &vec![0.01; rows * blocks],
        &vec![3; rows * blocks],
        vec![0.0; rows],
    )
    .expect("consistent constants");
    let x: Vec<f32> = (0..depth).map(|i| (i % 13) as f32 * 0.1).collect();
    let (mut y, mut scratch) = (vec![0f32; rows], Vec::new());
    let mut best = f64::MAX;
    for _ in 0..100 {
        let t = Instant::now();
        m.apply(std::hint::black_box(&x), &mut y, &mut scratch);
        best = best.min(t.elapsed().as_secs_f64());
    }
    let gb = (rows * depth) as f64 / best / 1e9;
    println!("int8 fc1 {rows} x {depth}: {:.3} ms, {gb:.1} GB/s of weights", best * 1e3);
}

/// Giga multiply-adds a second on one core, twelve independent accumulators
/// (enough to hide each instruction's latency), operands in registers (an
/// `xor` with an opaque zero each step keeps the products inside the loop,
/// and each accumulator has its own multiplier, as a kernel's rows have).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn multiply_add_rates() {
    fn rate(macs_per_step: usize, f: unsafe fn() -> i64) -> f64 {
        let t = Instant::now();
        // SAFETY: only called once AVX2 and FMA were detected.
        std::hint::black_box(unsafe { f() });
        (STEPS * 12 * macs_per_step) as f64 / t.elapsed().as_secs_f64() / 1e9
    }
    let fma = rate(8, fma_f32);
    let i16_pairs = rate(16, madd_i16);
    let u8_i8 = rate(32, maddubs_u8_i8);
    println!(
        "multiply-adds in registers, G/s: f32 FMA {fma:.1}; i16 pairs (vpmaddwd) {i16_pairs:.1}; \
         u8 x i8 pairs (vpmaddubsw, saturating to i16, + vpmaddwd) {u8_i8:.1}"
    );
}

#[cfg(target_arch = "x86_64")]
const STEPS: usize = 20_000_000;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_f32() -> i64 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_set1_ps(0.0); 12];
    let mut a = _mm256_set1_ps(1.0001);
    let b: [__m256; 12] = std::hint::black_box(std::array::from_fn(|i| _mm256_set1_ps(0.999 + i as f32 * 1e-4)));
    let zero = std::hint::black_box(_mm256_setzero_ps());
    for _ in 0..STEPS {
        a = _mm256_xor_ps(a, zero);
        for (r, b) in acc.iter_mut().zip(&b) {
            *r = _mm256_fmadd_ps(a, *b, *r);
        }
    }
    acc.iter().map(|r| _mm256_cvtss_f32(*r) as i64).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn madd_i16() -> i64 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_setzero_si256(); 12];
    let mut a = _mm256_set1_epi16(3);
    let b: [__m256i; 12] = std::hint::black_box(std::array::from_fn(|i| _mm256_set1_epi16(5 + i as i16)));
    let zero = std::hint::black_box(_mm256_setzero_si256());
    for _ in 0..STEPS {
        a = _mm256_xor_si256(a, zero);
        for (r, b) in acc.iter_mut().zip(&b) {
            *r = _mm256_add_epi32(*r, _mm256_madd_epi16(a, *b));
        }
    }
    acc.iter().map(|r| _mm256_extract_epi32::<0>(*r) as i64).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn maddubs_u8_i8() -> i64 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_setzero_si256(); 12];
    let (mut a, ones) = (_mm256_set1_epi8(3), _mm256_set1_epi16(1));
    let b: [__m256i; 12] = std::hint::black_box(std::array::from_fn(|i| _mm256_set1_epi8(5 + i as i8)));
    let zero = std::hint::black_box(_mm256_setzero_si256());
    for _ in 0..STEPS {
        a = _mm256_xor_si256(a, zero);
        for (r, b) in acc.iter_mut().zip(&b) {
            *r = _mm256_add_epi32(*r, _mm256_madd_epi16(_mm256_maddubs_epi16(a, *b), ones));
        }
    }
    acc.iter().map(|r| _mm256_extract_epi32::<0>(*r) as i64).sum()
}
