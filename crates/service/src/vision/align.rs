//! Face alignment: a least-squares similarity transform from the five
//! detected landmarks to the ArcFace template, and a bilinear warp.
use image::{Rgb, RgbImage};

use crate::domain::Point;
use visage_model::manifest::Alignment;

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

/// Points of dlib's mean face shape (`get_face_chip_details` in
/// `dlib/image_transforms/interpolation.h`, 68-point layout, unit square):
/// the six of each eye (36-41, 42-47), the nose tip (30) and the mouth
/// corners (48, 54). YuNet's five landmarks are the eye centres, the nose tip
/// and the mouth corners of this same layout.
const DLIB_RIGHT_EYE: [Point; 6] = [
    [0.121737, 0.216423],
    [0.187122, 0.178758],
    [0.265825, 0.179852],
    [0.334606, 0.231733],
    [0.260918, 0.245099],
    [0.182743, 0.244077],
];
const DLIB_LEFT_EYE: [Point; 6] = [
    [0.645647, 0.231733],
    [0.714428, 0.179852],
    [0.793132, 0.178758],
    [0.858516, 0.216423],
    [0.79751, 0.244077],
    [0.719335, 0.245099],
];
const DLIB_NOSE_TIP: Point = [0.490127, 0.515625];
const DLIB_MOUTH: [Point; 2] = [[0.254149, 0.780233], [0.726104, 0.780233]];
/// dlib's face-recognition chips: 150x150 with 0.25 padding.
pub const DLIB_PADDING: f32 = 0.25;

/// dlib's chip template for YuNet's five points in a `width x height` crop:
/// mean-shape points `p` land at `(padding + p) / (1 + 2 padding) * size`.
pub fn dlib_template(width: u32, height: u32, padding: f32) -> [Point; 5] {
    let centre = |ps: &[Point; 6]| {
        let (x, y) = ps.iter().fold((0.0, 0.0), |(x, y), p| (x + p[0], y + p[1]));
        [x / 6.0, y / 6.0]
    };
    let unit = [centre(&DLIB_RIGHT_EYE), centre(&DLIB_LEFT_EYE), DLIB_NOSE_TIP, DLIB_MOUTH[0], DLIB_MOUTH[1]];
    let scale = |v: f32, size: u32| (padding + v) / (1.0 + 2.0 * padding) * size as f32;
    unit.map(|p| [scale(p[0], width), scale(p[1], height)])
}

/// The five target points of a `width x height` crop for `alignment`.
pub fn template(alignment: Alignment, width: u32, height: u32) -> [Point; 5] {
    match alignment {
        Alignment::Arcface => template_for(width, height),
        Alignment::Dlib => dlib_template(width, height, DLIB_PADDING),
    }
}

/// The side of the crops `--keep-crops` stores.
pub const KEPT_CROP_SIZE: u32 = 256;
/// The ArcFace template's share of a kept crop: its eyes 56 px apart, the
/// crop about 4.5 eye distances wide, so every embedder's own crop (ArcFace
/// 112x112 spans about 3.2 eye distances, dlib's chip about 2.9) lies well
/// inside it and is cut again from it like from the photo.
const KEPT_CROP_ZOOM: f32 = 0.7;

/// The five points of a kept crop: the ArcFace template, shrunk about its centre.
pub fn kept_crop_template() -> [Point; 5] {
    let s = KEPT_CROP_SIZE as f32 / 112.0 * KEPT_CROP_ZOOM;
    let c = KEPT_CROP_SIZE as f32 / 2.0;
    ARCFACE_112.map(|p| [c + (p[0] - 56.0) * s, c + (p[1] - 56.0) * s])
}

/// The face and its surroundings in the frame `--keep-crops` stores, with
/// where its landmarks fall in it: what re-embedding with another model needs.
pub fn kept_crop(img: &RgbImage, landmarks: &[Point; 5]) -> Option<(RgbImage, [Point; 5])> {
    let m = umeyama(landmarks, &kept_crop_template())?;
    let crop = warp(img, &m, KEPT_CROP_SIZE, KEPT_CROP_SIZE)?;
    Some((crop, landmarks.map(|p| m.apply(p))))
}

/// Aligns the face with the given landmarks into a `width x height` crop of
/// the ArcFace template.
pub fn align_face(img: &RgbImage, landmarks: &[Point; 5], width: u32, height: u32) -> Option<RgbImage> {
    align_to(img, landmarks, Alignment::Arcface, width, height)
}

/// Aligns the face with the given landmarks into a `width x height` crop of `alignment`'s template.
pub fn align_to(
    img: &RgbImage,
    landmarks: &[Point; 5],
    alignment: Alignment,
    width: u32,
    height: u32,
) -> Option<RgbImage> {
    let m = umeyama(landmarks, &template(alignment, width, height))?;
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
    fn dlib_template_is_the_mean_face_with_padding() {
        let t = dlib_template(150, 150, 0.25);
        // Eye centres: means of six mean-shape points each, (0.25 + x) / 1.5 * 150.
        let close = |a: Point, b: Point| (a[0] - b[0]).abs() < 1e-3 && (a[1] - b[1]).abs() < 1e-3;
        assert!(close(t[0], [(0.25 + 1.352951 / 6.0) * 100.0, (0.25 + 1.295942 / 6.0) * 100.0]), "{t:?}");
        assert!(close(t[1], [(0.25 + 4.528568 / 6.0) * 100.0, (0.25 + 1.295942 / 6.0) * 100.0]), "{t:?}");
        assert!(close(t[2], [74.0127, 76.5625]));
        // Symmetric about the face's vertical axis (x = 0.490127 in the unit square).
        let axis = (0.25 + 0.490127) * 100.0;
        assert!(((t[0][0] + t[1][0]) / 2.0 - axis).abs() < 1e-3);
        assert!(((t[3][0] + t[4][0]) / 2.0 - axis).abs() < 1e-3);
        // Zero padding maps the unit square onto the crop.
        assert!(close(dlib_template(100, 100, 0.0)[2], [49.0127, 51.5625]));
        // Image-left first, as YuNet orders its landmarks.
        assert!(t[0][0] < t[1][0] && t[3][0] < t[4][0] && t[0][1] < t[2][1] && t[2][1] < t[3][1]);
    }

    #[test]
    fn a_face_on_the_dlib_template_warps_onto_itself() {
        let img = RgbImage::from_fn(150, 150, |x, y| Rgb([x as u8, y as u8, (x ^ y) as u8]));
        let out = align_to(&img, &dlib_template(150, 150, 0.25), Alignment::Dlib, 150, 150).unwrap();
        assert_eq!(out, img);
    }

    #[test]
    fn a_kept_crop_gives_every_embedder_the_crop_the_photo_gives() {
        // A smooth synthetic "photo" (bilinear resampling of noise would blur it apart).
        let img = RgbImage::from_fn(400, 300, |x, y| {
            let (x, y) = (x as f32, y as f32);
            let v = |k: f32| (127.0 + 120.0 * ((x * k).sin() * (y * 0.7 * k).cos())) as u8;
            Rgb([v(0.05), v(0.031), v(0.017)])
        });
        let landmarks = [[180.0, 130.0], [222.0, 128.0], [201.0, 152.0], [184.0, 176.0], [219.0, 175.0]];
        let (kept, at) = kept_crop(&img, &landmarks).unwrap();
        assert_eq!(kept.dimensions(), (KEPT_CROP_SIZE, KEPT_CROP_SIZE));
        // The landmarks land near the template (they are not an exact similarity of it).
        for (p, q) in at.iter().zip(kept_crop_template()) {
            assert!((p[0] - q[0]).abs() < 6.0 && (p[1] - q[1]).abs() < 6.0, "{p:?} {q:?}");
        }
        for (alignment, w, h) in [(Alignment::Arcface, 112, 112), (Alignment::Dlib, 150, 150)] {
            let direct = align_to(&img, &landmarks, alignment, w, h).unwrap();
            let again = align_to(&kept, &at, alignment, w, h).unwrap();
            let diff: f64 = direct.as_raw().iter().zip(again.as_raw()).map(|(a, b)| f64::from(a.abs_diff(*b))).sum();
            let mean = diff / direct.as_raw().len() as f64;
            // Twice resampled: close, not identical; and no black border crept in.
            assert!(mean < 2.0, "{alignment:?}: mean difference {mean}");
            assert!(again.pixels().all(|p| p.0 != [0, 0, 0]), "{alignment:?} reached past the kept crop");
        }
    }

    #[test]
    fn aligning_template_landmarks_of_a_112_image_is_the_identity() {
        let img = RgbImage::from_fn(112, 112, |x, y| Rgb([x as u8, y as u8, (x ^ y) as u8]));
        let out = align_face(&img, &ARCFACE_112, 112, 112).unwrap();
        assert_eq!(out, img);
    }
}
