use std::time::Instant;
use visage::model::kernels::depthwise::{Geometry, MaxAffine, depthwise};
fn main() {
    for (c, h, s) in [(512usize, 14usize, 1usize), (64, 112, 2), (128, 56, 1), (1024, 7, 1)] {
        let g = Geometry {
            channels: c,
            in_h: h,
            in_w: h,
            kernel_h: 3,
            kernel_w: 3,
            stride_h: s,
            stride_w: s,
            pad_top: 1,
            pad_left: 1,
            pad_bottom: 1,
            pad_right: 1,
        };
        let input = vec![0.5f32; c * h * h];
        let w = vec![0.1f32; c * 9];
        let b = vec![0.0f32; c];
        let sc = vec![0.2f32; c];
        let mut out = vec![0f32; c * g.out_h() * g.out_w()];
        let mut scratch = Vec::new();
        let mut best = f64::MAX;
        for _ in 0..50 {
            let t = Instant::now();
            depthwise(&g, &input, &w, &b, Some(MaxAffine { scale: &sc, shift: &b }), &mut out, &mut scratch);
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
        }
        println!("{c}x{h}x{h} s{s}: {best:.3} ms");
    }
}
