//! The pointwise kernel (src/model/kernels/gemm.rs) alone on the shapes of
//! SFace's and YuNet's 1x1 convolutions, in GFLOP/s (best of 100 calls), to
//! compare with the CPU's peak: with the data in cache, and "cold", after
//! 64 MiB were written (as in a model, where the previous layers evicted the
//! weights). Then SFace's last layer (128 x 50,176) as the block-quantized
//! int8 product (src/model/kernels/qgemv.rs), in GB/s of weights read.
//! A development tool for speed
//! work, not part of the service; print the CPU beside its figures:
//!
//!     grep -m1 'model name' /proc/cpuinfo
//!     cargo run --release --example gemm_probe
use std::time::Instant;

use visage::model::kernels::gemm::{Packed, pointwise};
use visage::model::kernels::qgemv::QuantizedRows;

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
