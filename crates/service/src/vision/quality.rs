//! Measuring a face's quality signals (`domain::Quality`): its size, the
//! distance between its eyes, and the sharpness of its aligned crop.
use crate::domain::{Point, Quality};
use image::RgbImage;

/// The quality of a face from its box size, its landmarks and its aligned crop.
pub fn measure(face_width: f32, face_height: f32, landmarks: &[Point; 5], aligned: &RgbImage) -> Quality {
    let eye_distance =
        ((landmarks[0][0] - landmarks[1][0]).powi(2) + (landmarks[0][1] - landmarks[1][1]).powi(2)).sqrt();
    Quality { face_size: face_width.min(face_height), eye_distance, sharpness: laplacian_variance(aligned) }
}

/// Variance of the 4-neighbour Laplacian of the luma, over the interior.
pub fn laplacian_variance(img: &RgbImage) -> f32 {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w < 3 || h < 3 {
        return 0.0;
    }
    let luma: Vec<f32> =
        img.pixels().map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])).collect();
    let (mut sum, mut sum2, mut n) = (0.0f64, 0.0f64, 0.0f64);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let c = luma[y * w + x];
            let l = luma[y * w + x - 1] + luma[y * w + x + 1] + luma[(y - 1) * w + x] + luma[(y + 1) * w + x] - 4.0 * c;
            sum += f64::from(l);
            sum2 += f64::from(l) * f64::from(l);
            n += 1.0;
        }
    }
    let mean = sum / n;
    (sum2 / n - mean * mean).max(0.0) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_images_have_no_sharpness_and_edges_have_some() {
        let flat = RgbImage::from_pixel(20, 20, image::Rgb([128, 128, 128]));
        assert_eq!(laplacian_variance(&flat), 0.0);
        let checker =
            RgbImage::from_fn(20, 20, |x, y| if (x + y) % 2 == 0 { image::Rgb([255; 3]) } else { image::Rgb([0; 3]) });
        let stripes = RgbImage::from_fn(20, 20, |x, _| if x < 10 { image::Rgb([255; 3]) } else { image::Rgb([0; 3]) });
        assert!(laplacian_variance(&checker) > laplacian_variance(&stripes));
        assert!(laplacian_variance(&stripes) > 0.0);
    }
}
