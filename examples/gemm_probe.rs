//! The pointwise kernel (src/model/kernels/gemm.rs) alone on the shapes of
//! SFace's and YuNet's 1x1 convolutions, in GFLOP/s (best of 100 calls, data
//! in cache), to compare with the CPU's peak. A development tool for speed
//! work, not part of the service; print the CPU beside its figures:
//!
//!     grep -m1 'model name' /proc/cpuinfo
//!     cargo run --release --example gemm_probe
use std::time::Instant;

use visage::model::kernels::gemm::{Packed, pointwise};

fn main() {
    // (output channels, input channels, points)
    for (o, k, n) in [(64, 32, 12544), (128, 128, 3136), (512, 512, 196), (1024, 1024, 49), (64, 16, 102400)] {
        let w: Vec<f32> = (0..o * k).map(|i| (i % 97) as f32 * 0.01).collect();
        let x: Vec<f32> = (0..k * n).map(|i| (i % 89) as f32 * 0.01).collect();
        let p = Packed::new(&w, [o, k, 1], &vec![0.1; o], None);
        let mut out = vec![0f32; o * n];
        let mut best = f64::MAX;
        for _ in 0..100 {
            let t = Instant::now();
            pointwise(&p, &x, n, &mut out);
            best = best.min(t.elapsed().as_secs_f64());
        }
        let flops = 2.0 * (o * k * n) as f64;
        println!("{o:>5} x {k:>5} x {n:>6}: {:.3} ms, {:.1} GFLOP/s", best * 1e3, flops / best / 1e9);
    }
}
