//! Fast, antialiased image resizing (SIMD convolution from `fast_image_resize`).
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

/// Resizes an RGB image with a bilinear (triangle) filter that widens when
/// downscaling, so small faces are not aliased away.
pub fn resize_rgb(src: &RgbImage, width: u32, height: u32) -> anyhow::Result<RgbImage> {
    if src.dimensions() == (width, height) {
        return Ok(src.clone());
    }
    let view = ImageRef::new(src.width(), src.height(), src.as_raw(), PixelType::U8x3)?;
    let mut dst = Image::new(width, height, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new().resize(&view, &mut dst, &options)?;
    RgbImage::from_raw(width, height, dst.into_vec())
        .ok_or_else(|| anyhow::anyhow!("resize produced a buffer of the wrong size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizing_a_flat_image_keeps_its_colour_and_size() {
        let src = RgbImage::from_pixel(100, 60, image::Rgb([10, 200, 30]));
        let out = resize_rgb(&src, 33, 20).unwrap();
        assert_eq!(out.dimensions(), (33, 20));
        assert!(out.pixels().all(|p| p.0 == [10, 200, 30]));
    }
}
