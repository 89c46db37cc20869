use std::time::Instant;
use visage::model::kernels::qgemv::QuantizedRows;
fn main() {
    for rows in [128usize, 8] {
        let depth = 50176;
        let block = 64;
        let blocks = depth / block;
        let q: Vec<i8> = (0..rows * depth).map(|i| ((i * 7919) % 255) as i32 as i8).collect();
        let scale = vec![0.01f32; rows * blocks];
        let zero = vec![3i8; rows * blocks];
        let m = QuantizedRows::new([rows, depth], block, q, &scale, &zero, vec![0.0; rows]).unwrap();
        let x: Vec<f32> = (0..depth).map(|i| (i % 13) as f32 * 0.1).collect();
        let mut y = vec![0f32; rows];
        let mut s = Vec::new();
        let mut best = f64::MAX;
        for _ in 0..50 {
            let t = Instant::now();
            m.apply(&x, &mut y, &mut s);
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "rows {rows}: best {:.3} ms, {:.1} GB/s of int8, per row {:.1} us",
            best * 1e3,
            (rows * depth) as f64 / best / 1e9,
            best * 1e6 / rows as f64
        );
    }
}
