//! Image decoding: bytes in any supported format to an upright RGB image.
//!
//! The EXIF orientation is applied before anything else (phone photos are
//! often stored rotated), and dimensions are checked against explicit limits
//! before the pixels are allocated, so a decompression bomb is refused cheaply.
use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

/// Bounds on what a decode may allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest width x height accepted.
    pub max_pixels: u64,
    /// Largest width or height accepted.
    pub max_dimension: u32,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self { max_pixels: 40_000_000, max_dimension: 20_000 }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("the image is empty")]
    Empty,
    #[error("the data is not an image in a supported format (JPEG, PNG, WebP, BMP, GIF, TIFF)")]
    UnknownFormat,
    #[error("the image is {width}x{height}, larger than the limit of {limit}")]
    TooLarge { width: u32, height: u32, limit: String },
    #[error("the image cannot be decoded: {0}")]
    Malformed(String),
}

/// The formats visage accepts.
pub const FORMATS: [ImageFormat; 6] =
    [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::WebP, ImageFormat::Bmp, ImageFormat::Gif, ImageFormat::Tiff];

/// Decodes `bytes` (first frame of an animation) into upright 8-bit RGB.
pub fn decode_image(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    match reader.format() {
        Some(ImageFormat::Jpeg) if !jpeg_is_complete(bytes) => {
            // The JPEG decoder fills a missing tail with grey instead of failing.
            return Err(DecodeError::Malformed("the JPEG is truncated (no end-of-image marker)".into()));
        }
        Some(f) if FORMATS.contains(&f) => {}
        _ => return Err(DecodeError::UnknownFormat),
    }
    let mut lim = Limits::default();
    lim.max_image_width = Some(limits.max_dimension);
    lim.max_image_height = Some(limits.max_dimension);
    // The decoded buffer may be up to 16 bytes per pixel (RGBA f32) plus slack.
    lim.max_alloc = Some(limits.max_pixels.saturating_mul(16).saturating_add(64 << 20));
    reader.limits(lim);
    let mut decoder = reader.into_decoder().map_err(|e| classify(e, limits))?;
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height, limits)?;
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| classify(e, limits))?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    })
}

/// Whether an end-of-image marker follows the last start-of-scan. In the
/// entropy-coded data every 0xFF is followed by 0x00 or a restart marker, so
/// these two markers cannot appear by accident; an EXIF thumbnail's own
/// markers come before the main image's scans.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let Some(sos) = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]) else { return false };
    bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9])
}

fn check_dimensions(width: u32, height: u32, limits: &DecodeLimits) -> Result<(), DecodeError> {
    if width == 0 || height == 0 {
        return Err(DecodeError::Malformed(format!("the image declares a size of {width}x{height}")));
    }
    if width > limits.max_dimension || height > limits.max_dimension {
        return Err(DecodeError::TooLarge {
            width,
            height,
            limit: format!("{} pixels per side", limits.max_dimension),
        });
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(DecodeError::TooLarge { width, height, limit: format!("{} pixels", limits.max_pixels) });
    }
    Ok(())
}

fn classify(e: image::ImageError, limits: &DecodeLimits) -> DecodeError {
    match e {
        image::ImageError::Limits(l) => {
            DecodeError::TooLarge { width: 0, height: 0, limit: format!("{} ({l})", limits.max_pixels) }
        }
        image::ImageError::Unsupported(u) => DecodeError::Malformed(u.to_string()),
        other => DecodeError::Malformed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, codecs::png::PngEncoder};

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = Vec::new();
        PngEncoder::new(&mut out).write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgb8).unwrap();
        out
    }

    #[test]
    fn decodes_a_png_and_refuses_empty_and_garbage() {
        let img = decode_image(&png(5, 3), &DecodeLimits::default()).unwrap();
        assert_eq!(img.dimensions(), (5, 3));
        assert_eq!(img.get_pixel(4, 2).0, [4, 2, 7]);
        assert_eq!(decode_image(&[], &DecodeLimits::default()), Err(DecodeError::Empty));
        assert_eq!(
            decode_image(b"hello world, not an image", &DecodeLimits::default()),
            Err(DecodeError::UnknownFormat)
        );
        let truncated = &png(50, 50)[..60];
        assert!(matches!(decode_image(truncated, &DecodeLimits::default()), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn a_truncated_jpeg_is_refused_a_complete_one_with_trailing_bytes_is_not() {
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut jpeg).encode_image(&RgbImage::new(32, 32)).unwrap();
        assert!(jpeg_is_complete(&jpeg));
        assert!(decode_image(&jpeg, &DecodeLimits::default()).is_ok());
        let cut = &jpeg[..jpeg.len() - 10];
        assert!(
            matches!(decode_image(cut, &DecodeLimits::default()), Err(DecodeError::Malformed(m)) if m.contains("truncated"))
        );
        let mut padded = jpeg.clone();
        padded.extend_from_slice(b"trailing junk some cameras add");
        assert!(decode_image(&padded, &DecodeLimits::default()).is_ok());
    }

    #[test]
    fn decodes_every_supported_format() {
        let img = image::DynamicImage::ImageRgb8(RgbImage::from_fn(16, 12, |x, y| {
            image::Rgb([x as u8 * 10, y as u8 * 10, 50])
        }));
        for format in FORMATS {
            let mut buf = Cursor::new(Vec::new());
            img.write_to(&mut buf, format).unwrap_or_else(|e| panic!("{format:?}: {e}"));
            let out =
                decode_image(buf.get_ref(), &DecodeLimits::default()).unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_eq!(out.dimensions(), (16, 12), "{format:?}");
            // Lossless formats keep the pixels (GIF quantises its palette).
            if !matches!(format, ImageFormat::Jpeg | ImageFormat::Gif) {
                assert_eq!(out.get_pixel(15, 11).0, [150, 110, 50], "{format:?}");
            }
        }
    }

    /// Naive RGB to CMYK (ink amounts, 0 = none), as a print workflow stores it.
    fn rgb_to_cmyk(rgb: &[u8]) -> Vec<u8> {
        rgb.chunks_exact(3)
            .flat_map(|p| {
                let max = p.iter().copied().max().unwrap_or(0);
                let k = 255 - max;
                let ink = |c: u8| if max == 0 { 0 } else { ((u16::from(max - c) * 255) / u16::from(max)) as u8 };
                [ink(p[0]), ink(p[1]), ink(p[2]), k]
            })
            .collect()
    }

    #[test]
    fn decodes_cmyk_and_ycck_jpegs_to_the_right_colours() {
        let rgb = RgbImage::from_fn(48, 32, |x, y| image::Rgb([(x * 5) as u8, (y * 7) as u8, 200 - (x + y) as u8]));
        let cmyk = rgb_to_cmyk(rgb.as_raw());
        for color in [jpeg_encoder::ColorType::Cmyk, jpeg_encoder::ColorType::CmykAsYcck] {
            let mut jpeg = Vec::new();
            jpeg_encoder::Encoder::new(&mut jpeg, 95).encode(&cmyk, 48, 32, color).unwrap();
            let out = decode_image(&jpeg, &DecodeLimits::default()).unwrap_or_else(|e| panic!("{color:?}: {e}"));
            assert_eq!(out.dimensions(), (48, 32));
            let err: f64 = out.as_raw().iter().zip(rgb.as_raw()).map(|(a, b)| f64::from(a.abs_diff(*b))).sum::<f64>()
                / rgb.as_raw().len() as f64;
            assert!(err < 4.0, "{color:?}: mean error {err:.2} per channel (inverted or mis-converted CMYK?)");
        }
    }

    #[test]
    fn refuses_images_over_the_pixel_and_dimension_limits() {
        let limits = DecodeLimits { max_pixels: 100, max_dimension: 1000 };
        assert!(matches!(decode_image(&png(20, 20), &limits), Err(DecodeError::TooLarge { .. })));
        let limits = DecodeLimits { max_pixels: 1_000_000, max_dimension: 10 };
        assert!(matches!(decode_image(&png(20, 5), &limits), Err(DecodeError::TooLarge { .. })));
    }
}
