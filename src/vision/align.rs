//! Face alignment: a least-squares similarity transform from the five
//! detected landmarks to the ArcFace template, and a bilinear warp.
use image::{Rgb, RgbImage};

use super::geometry::Point;

/// The standard 112x112 ArcFace 5-point template: right eye, left eye (in the
/// image: left, right), nose tip, right and left mouth corners.
pub const ARCFACE_112: [Point; 5] =
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]];

/// A 2-D similarity `p' = s R p + t`, written as `x' = a x - b y + tx`,
/// `y' = b x + a y + ty` (`a = s cos θ`, `b = s sin θ`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f64,
    pub b: f64,
    pub tx: f64,
    pub ty: f64,
}

impl Similarity {
    pub fn apply(&self, p: Point) -> Point {
        let (x, y) = (f64::from(p[0]), f64::from(p[1]));
        [(self.a * x - self.b * y + self.tx) as f32, (self.b * x + self.a * y + self.ty) as f32]
    }

    /// The inverse transform, or None for a degenerate (zero-scale) one.
    pub fn inverse(&self) -> Option<Similarity> {
        let n = self.a * self.a + self.b * self.b;
        if !(n.is_finite() && n > 1e-12) {
            return None;
        }
        let (a, b) = (self.a / n, -self.b / n);
        Some(Similarity { a, b, tx: -(a * self.tx - b * self.ty), ty: -(b * self.tx + a * self.ty) })
    }

    pub fn scale(&self) -> f64 {
        (self.a * self.a + self.b * self.b).sqrt()
    }

    /// The 2x3 affine matrix `[[a, -b, tx], [b, a, ty]]`.
    pub fn matrix(&self) -> [[f64; 3]; 2] {
        [[self.a, -self.b, self.tx], [self.b, self.a, self.ty]]
    }
}

/// Umeyama's least-squares similarity (rotation, uniform scale, translation;
/// no reflection) mapping `src` onto `dst`. In 2-D it has the closed form
/// `z = Σ conj(x_i) y_i / Σ |x_i|²` on centred points seen as complex numbers.
/// None when fewer than two points are given or `src` is degenerate.
pub fn umeyama(src: &[Point], dst: &[Point]) -> Option<Similarity> {
    if src.len() != dst.len() || src.len() < 2 {
        return None;
    }
    let n = src.len() as f64;
    let mean = |ps: &[Point]| {
        let (sx, sy) = ps.iter().fold((0.0, 0.0), |(x, y), p| (x + f64::from(p[0]), y + f64::from(p[1])));
        (sx / n, sy / n)
    };
    let (mx, my) = mean(src);
    let (nx, ny) = mean(dst);
    let (mut dotp, mut cross, mut var) = (0.0, 0.0, 0.0);
    for (p, q) in src.iter().zip(dst) {
        let (x0, x1) = (f64::from(p[0]) - mx, f64::from(p[1]) - my);
        let (y0, y1) = (f64::from(q[0]) - nx, f64::from(q[1]) - ny);
        dotp += x0 * y0 + x1 * y1;
        cross += x0 * y1 - x1 * y0;
        var += x0 * x0 + x1 * x1;
    }
    if !(var.is_finite() && var > 1e-9) {
        return None;
    }
    let (a, b) = (dotp / var, cross / var);
    Some(Similarity { a, b, tx: nx - (a * mx - b * my), ty: ny - (b * mx + a * my) })
}

/// Warps `img` by `m` (source to output pixels) into a `width x height` image
/// with bilinear sampling; outside the source is black (as OpenCV's
/// `warpAffine` with a constant border).
pub fn warp(img: &RgbImage, m: &Similarity, width: u32, height: u32) -> Option<RgbImage> {
    let inv = m.inverse()?;
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let src = img.as_raw();
    let px = |x: i64, y: i64, c: usize| -> f64 {
        if x < 0 || y < 0 || x >= w || y >= h { 0.0 } else { f64::from(src[((y * w + x) * 3) as usize + c]) }
    };
    let mut out = RgbImage::new(width, height);
    for v in 0..height {
        for u in 0..width {
            let (uf, vf) = (f64::from(u), f64::from(v));
            let sx = inv.a * uf - inv.b * vf + inv.tx;
            let sy = inv.b * uf + inv.a * vf + inv.ty;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let mut rgb = [0u8; 3];
            for (c, out_c) in rgb.iter_mut().enumerate() {
                let top = px(x0, y0, c) * (1.0 - fx) + px(x0 + 1, y0, c) * fx;
                let bottom = px(x0, y0 + 1, c) * (1.0 - fx) + px(x0 + 1, y0 + 1, c) * fx;
                *out_c = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
            }
            out.put_pixel(u, v, Rgb(rgb));
        }
    }
    Some(out)
}

/// The ArcFace template scaled to a `width x height` crop (exact at 112x112).
pub fn template_for(width: u32, height: u32) -> [Point; 5] {
    let (sx, sy) = (width as f32 / 112.0, height as f32 / 112.0);
    ARCFACE_112.map(|p| [p[0] * sx, p[1] * sy])
}

/// Aligns the face with the given landmarks into a `width x height` crop.
pub fn align_face(img: &RgbImage, landmarks: &[Point; 5], width: u32, height: u32) -> Option<RgbImage> {
    let m = umeyama(landmarks, &template_for(width, height))?;
    warp(img, &m, width, height)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umeyama_recovers_a_known_similarity() {
        let truth = Similarity { a: 1.7 * 0.4f64.cos(), b: 1.7 * 0.4f64.sin(), tx: -12.5, ty: 40.25 };
        let src: Vec<Point> = ARCFACE_112.to_vec();
        let dst: Vec<Point> = src.iter().map(|&p| truth.apply(p)).collect();
        let m = umeyama(&src, &dst).unwrap();
        assert!((m.a - truth.a).abs() < 1e-5, "{m:?}");
        assert!((m.b - truth.b).abs() < 1e-5, "{m:?}");
        assert!((m.tx - truth.tx).abs() < 1e-3, "{m:?}");
        assert!((m.ty - truth.ty).abs() < 1e-3, "{m:?}");
        assert!((m.scale() - 1.7).abs() < 1e-6);
    }

    #[test]
    fn umeyama_is_least_squares_on_noisy_points_and_never_reflects() {
        // A mirrored template cannot be matched by a rotation: the best proper
        // similarity has a smaller scale, never a negative determinant.
        let mirrored: Vec<Point> = ARCFACE_112.iter().map(|p| [112.0 - p[0], p[1]]).collect();
        let m = umeyama(&ARCFACE_112, &mirrored).unwrap();
        assert!(m.a * m.a + m.b * m.b > 0.0);
        assert!(m.scale() < 1.0);
        // Identity plus symmetric noise stays the identity.
        let noisy: Vec<Point> =
            ARCFACE_112.iter().enumerate().map(|(i, p)| [p[0] + if i % 2 == 0 { 0.1 } else { -0.1 }, p[1]]).collect();
        let m = umeyama(&ARCFACE_112, &noisy).unwrap();
        assert!((m.scale() - 1.0).abs() < 0.01);
    }

    #[test]
    fn umeyama_refuses_degenerate_input() {
        assert!(umeyama(&[[1.0, 1.0]; 5], &ARCFACE_112).is_none());
        assert!(umeyama(&[[1.0, 1.0]], &[[2.0, 2.0]]).is_none());
    }

    #[test]
    fn inverse_undoes_the_transform() {
        let m = Similarity { a: 0.3, b: -1.1, tx: 5.0, ty: -7.0 };
        let inv = m.inverse().unwrap();
        let p = [13.0, -2.5];
        let q = inv.apply(m.apply(p));
        assert!((q[0] - p[0]).abs() < 1e-4 && (q[1] - p[1]).abs() < 1e-4);
    }

    #[test]
    fn warp_by_a_translation_shifts_pixels_and_fills_black() {
        let img = RgbImage::from_fn(8, 8, |x, y| Rgb([(x * 10) as u8, (y * 10) as u8, 99]));
        // output(u, v) = input(u + 2, v + 1)
        let m = Similarity { a: 1.0, b: 0.0, tx: -2.0, ty: -1.0 };
        let out = warp(&img, &m, 8, 8).unwrap();
        assert_eq!(out.get_pixel(0, 0).0, [20, 10, 99]);
        assert_eq!(out.get_pixel(5, 6).0, [70, 70, 99]);
        assert_eq!(out.get_pixel(7, 7).0, [0, 0, 0]);
        // Half-pixel shift interpolates.
        let m = Similarity { a: 1.0, b: 0.0, tx: -0.5, ty: 0.0 };
        let out = warp(&img, &m, 8, 8).unwrap();
        assert_eq!(out.get_pixel(1, 0).0, [15, 0, 99]);
    }

    #[test]
    fn aligning_template_landmarks_of_a_112_image_is_the_identity() {
        let img = RgbImage::from_fn(112, 112, |x, y| Rgb([x as u8, y as u8, (x ^ y) as u8]));
        let out = align_face(&img, &ARCFACE_112, 112, 112).unwrap();
        assert_eq!(out, img);
    }
}
