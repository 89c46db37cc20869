//! The crops `--keep-crops` keeps: made from a photo as PNG, and read back
//! as an image with a detection to embed it again with any model.
use image::{ImageEncoder as _, RgbImage};

use crate::domain::{BBox, Detection, Point};

/// The face's kept crop as PNG, and where its landmarks fall in it (None
/// for degenerate landmarks).
pub fn encode(img: &RgbImage, landmarks: &[Point; 5]) -> Option<(Vec<u8>, [Point; 5])> {
    let (crop, at) = super::align::kept_crop(img, landmarks)?;
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(crop.as_raw(), crop.width(), crop.height(), image::ExtendedColorType::Rgb8)
        .ok()?;
    Some((png, at))
}

/// The detection of the face in its kept crop: its landmarks, in a box
/// spanning them (alignment uses only the landmarks).
pub fn detection(landmarks: [Point; 5]) -> Detection {
    let (xs, ys) = (landmarks.map(|l| l[0]), landmarks.map(|l| l[1]));
    let low = |v: [f32; 5]| v.into_iter().fold(f32::MAX, f32::min);
    let high = |v: [f32; 5]| v.into_iter().fold(f32::MIN, f32::max);
    let bbox = BBox { x: low(xs), y: low(ys), width: high(xs) - low(xs), height: high(ys) - low(ys) };
    Detection { bbox, landmarks, score: 1.0 }
}
