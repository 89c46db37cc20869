//! Face detection with YuNet: letterboxing the photo into the network input,
//! running the network at that size, decoding and NMS, and mapping boxes and
//! landmarks back to original-image pixels.
use anyhow::{Context, Result};
use image::RgbImage;

use super::resize::resize_rgb;
use super::yunet_head::{Level, decode_level, nms};
use crate::domain::{BBox, Detection, Point};
use visage_model::{ChannelOrder, InputSpec, LoadedModel, ModelId, Network};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorConfig {
    /// Minimum score of every face but a photo's best one (OpenCV's default
    /// for YuNet is 0.9; 0.85 keeps subjects that a slightly stronger
    /// bystander would otherwise hide).
    pub score_threshold: f32,
    /// Minimum score of a photo's best face. Lower than `score_threshold`:
    /// a photo sent to a face service almost always shows a face, and YuNet
    /// scores ordinary faces (profiles, low light, partly hidden) below 0.9;
    /// the stricter bar keeps background clutter out of multi-face answers.
    pub best_score_threshold: f32,
    /// IoU above which the weaker of two boxes is dropped.
    pub nms_threshold: f32,
    /// Most faces kept per photo.
    pub top_k: usize,
    /// Photos whose longer side exceeds this are downscaled for detection.
    pub max_side: u32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        // Chosen on LFW View 1's DevTrain photos and 216 non-face photos
        // (README: Detection): no photo without a face, no false face on the
        // non-face photos, and the fewest subjects lost to a stronger face
        // (bench/detection_tradeoff.py).
        Self { score_threshold: 0.85, best_score_threshold: 0.75, nms_threshold: 0.3, top_k: 100, max_side: 640 }
    }
}

/// How a photo maps into the network input: scaled to `scaled_*` (keeping the
/// aspect ratio), placed top-left and zero-padded to multiples of 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Letterbox {
    pub src_w: u32,
    pub src_h: u32,
    pub scaled_w: u32,
    pub scaled_h: u32,
    pub net_w: u32,
    pub net_h: u32,
}

/// YuNet's coarsest stride: input sides must be multiples of it.
pub const STRIDE_ALIGN: u32 = 32;

impl Letterbox {
    pub fn new(src_w: u32, src_h: u32, max_side: u32) -> Self {
        let longest = src_w.max(src_h).max(1);
        let (scaled_w, scaled_h) = if longest > max_side {
            let s = f64::from(max_side) / f64::from(longest);
            (
                ((f64::from(src_w) * s).round() as u32).clamp(1, max_side),
                ((f64::from(src_h) * s).round() as u32).clamp(1, max_side),
            )
        } else {
            (src_w.max(1), src_h.max(1))
        };
        let net_w = scaled_w.div_ceil(STRIDE_ALIGN) * STRIDE_ALIGN;
        let net_h = scaled_h.div_ceil(STRIDE_ALIGN) * STRIDE_ALIGN;
        Self { src_w, src_h, scaled_w, scaled_h, net_w, net_h }
    }

    /// Pads a portrait input on the right to a square once its width passes
    /// ~0.6 of its height: tract's own kernels run YuNet on such inputs slower
    /// than on the square (its depthwise convolutions; `visage bench-models`,
    /// WxH: 512x640 27.7 ms, 640x640 20.6; ONNX Runtime: 3.3 and 4.5 ms, and
    /// visage's kernels, are not padded: `Network::prefers_square_portrait`).
    pub fn square_portrait(mut self) -> Self {
        if self.net_h > self.net_w && self.net_w * 5 >= self.net_h * 3 {
            self.net_w = self.net_h;
        }
        self
    }

    /// Maps a point in network pixels back to original-image pixels.
    pub fn to_source(&self, p: Point) -> Point {
        [p[0] * self.src_w as f32 / self.scaled_w as f32, p[1] * self.src_h as f32 / self.scaled_h as f32]
    }

    /// Maps a detection back to original-image pixels, clipping the box to the image.
    pub fn detection_to_source(&self, d: &Detection) -> Detection {
        let [x1, y1] = self.to_source([d.bbox.x, d.bbox.y]);
        let [x2, y2] = self.to_source([d.bbox.x + d.bbox.width, d.bbox.y + d.bbox.height]);
        let (w, h) = (self.src_w as f32, self.src_h as f32);
        let (x1, y1, x2, y2) = (x1.clamp(0.0, w), y1.clamp(0.0, h), x2.clamp(0.0, w), y2.clamp(0.0, h));
        Detection {
            bbox: BBox { x: x1, y: y1, width: x2 - x1, height: y2 - y1 },
            landmarks: d.landmarks.map(|p| self.to_source(p)),
            score: d.score,
        }
    }
}

/// Fills an NCHW f32 tensor of shape `[1, 3, net_h, net_w]` from an RGB image
/// (top-left, zero padding), in the model's channel order and normalisation.
pub fn image_to_tensor(img: &RgbImage, spec: &InputSpec, net_w: usize, net_h: usize) -> Vec<f32> {
    let mut data = vec![0f32; 3 * net_w * net_h];
    let plane = net_w * net_h;
    let order: [usize; 3] = match spec.channel_order {
        ChannelOrder::Rgb => [0, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    };
    let (w, h) = (img.width() as usize, img.height() as usize);
    let raw = img.as_raw();
    // The padding stays 0 in the normalised tensor, as OpenCV pads for YuNet.
    for (c, &src_c) in order.iter().enumerate() {
        let (mean, inv_std) = (spec.mean[c], 1.0 / spec.std[c]);
        let dst = &mut data[c * plane..(c + 1) * plane];
        for y in 0..h.min(net_h) {
            let row = &raw[y * w * 3..(y + 1) * w * 3];
            let out = &mut dst[y * net_w..y * net_w + w.min(net_w)];
            for (x, o) in out.iter_mut().enumerate() {
                *o = (f32::from(row[x * 3 + src_c]) - mean) * inv_std;
            }
        }
    }
    data
}

/// YuNet on an inference backend.
pub struct Detector {
    model: LoadedModel,
    pub config: DetectorConfig,
    outputs: [[usize; 3]; 4],
}

impl Detector {
    pub fn new(model: LoadedModel, config: DetectorConfig) -> Result<Self> {
        let index = |name: &str| {
            model.outputs.iter().position(|o| o == name).with_context(|| format!("YuNet output {name} is missing"))
        };
        let mut outputs = [[0; 3]; 4];
        for (k, head) in ["cls", "obj", "bbox", "kps"].iter().enumerate() {
            for (l, stride) in [8, 16, 32].iter().enumerate() {
                outputs[k][l] = index(&format!("{head}_{stride}"))?;
            }
        }
        Ok(Self { model, config, outputs })
    }

    pub fn id(&self) -> &ModelId {
        &self.model.id
    }

    /// The network itself (for benchmarks and warm-up).
    pub fn network(&self) -> &dyn Network {
        self.model.network.as_ref()
    }

    /// How a `width x height` photo maps into this detector's input.
    pub fn letterbox(&self, width: u32, height: u32) -> Letterbox {
        let lb = Letterbox::new(width, height, self.config.max_side);
        if self.model.network.prefers_square_portrait() { lb.square_portrait() } else { lb }
    }

    /// Every face in `img`, best score first, in `img`'s pixels.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>> {
        let lb = self.letterbox(img.width(), img.height());
        let scaled;
        let net_img = if (lb.scaled_w, lb.scaled_h) == img.dimensions() {
            img
        } else {
            scaled = resize_rgb(img, lb.scaled_w, lb.scaled_h)?;
            &scaled
        };
        let (net_w, net_h) = (lb.net_w as usize, lb.net_h as usize);
        let input = image_to_tensor(net_img, &self.model.entry.input, net_w, net_h);
        let outputs = self.model.network.run(input, [1, 3, net_h, net_w])?;
        let mut candidates = Vec::new();
        for (l, stride) in [8usize, 16, 32].into_iter().enumerate() {
            let get = |k: usize| -> Result<&[f32]> {
                let t = outputs.get(self.outputs[k][l]).context("YuNet returned too few outputs")?;
                let cells = (net_w / stride) * (net_h / stride);
                let per_cell = [1, 1, 4, 10][k];
                anyhow::ensure!(
                    t.len() == cells * per_cell,
                    "YuNet output of {} values, expected {}",
                    t.len(),
                    cells * per_cell
                );
                Ok(t.as_slice())
            };
            let level = Level { stride, cls: get(0)?, obj: get(1)?, bbox: get(2)?, kps: get(3)? };
            let floor = self.config.score_threshold.min(self.config.best_score_threshold);
            decode_level(&level, lb.net_w as usize, lb.net_h as usize, floor, &mut candidates);
        }
        let kept = nms(candidates, self.config.nms_threshold, self.config.top_k);
        let kept = gate(kept, self.config.best_score_threshold, self.config.score_threshold);
        Ok(kept.iter().map(|d| lb.detection_to_source(d)).collect())
    }
}

/// Applies the two score bars to detections sorted best first: every face
/// needs `others`, and the first one only `best` when that is lower.
pub fn gate(sorted: Vec<Detection>, best: f32, others: f32) -> Vec<Detection> {
    let bar = |i: usize| if i == 0 { best.min(others) } else { others };
    sorted.into_iter().enumerate().filter(|(i, d)| d.score >= bar(*i)).map(|(_, d)| d).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letterbox_pads_small_images_to_multiples_of_32() {
        let lb = Letterbox::new(250, 250, 640);
        assert_eq!((lb.scaled_w, lb.scaled_h, lb.net_w, lb.net_h), (250, 250, 256, 256));
        assert_eq!(lb.to_source([100.0, 200.0]), [100.0, 200.0]);
    }

    #[test]
    fn letterbox_downscales_non_square_images_and_maps_back_exactly() {
        // 1434x2333 portrait: the long side goes to 640.
        let lb = Letterbox::new(1434, 2333, 640);
        assert_eq!(lb.scaled_h, 640);
        assert_eq!(lb.scaled_w, 393); // 1434 * 640 / 2333 = 393.4
        assert_eq!((lb.net_w, lb.net_h), (416, 640));
        // For tract, wide portrait inputs are padded to a square (faster)...
        let sq = lb.square_portrait();
        assert_eq!((sq.net_w, sq.net_h, sq.scaled_w, sq.scaled_h), (640, 640, 393, 640));
        // ...narrow ones are not.
        let narrow = Letterbox::new(300, 640, 640).square_portrait();
        assert_eq!((narrow.net_w, narrow.net_h), (320, 640));
        // The corners of the scaled image map to the corners of the source,
        // each axis with its own exact factor.
        let [x, y] = lb.to_source([393.0, 640.0]);
        assert!((x - 1434.0).abs() < 1e-3 && (y - 2333.0).abs() < 1e-3);
        let [x, y] = lb.to_source([196.5, 320.0]);
        assert!((x - 717.0).abs() < 1e-3 && (y - 1166.5).abs() < 1e-3);
        // Landscape.
        let lb = Letterbox::new(1920, 1080, 640);
        assert_eq!((lb.scaled_w, lb.scaled_h, lb.net_w, lb.net_h), (640, 360, 640, 384));
    }

    #[test]
    fn detections_map_back_and_clip_to_the_image() {
        let lb = Letterbox::new(1000, 500, 500);
        assert_eq!((lb.scaled_w, lb.scaled_h), (500, 250));
        let d = Detection {
            bbox: BBox { x: -10.0, y: 100.0, width: 60.0, height: 200.0 },
            landmarks: [[20.0, 120.0]; 5],
            score: 0.9,
        };
        let m = lb.detection_to_source(&d);
        assert_eq!(m.bbox, BBox { x: 0.0, y: 200.0, width: 100.0, height: 300.0 });
        assert_eq!(m.landmarks[0], [40.0, 240.0]);
        assert_eq!(m.score, 0.9);
    }

    #[test]
    fn the_best_face_has_its_own_bar_and_the_others_theirs() {
        let d = |score: f32| Detection {
            bbox: BBox { x: 0.0, y: 0.0, width: 1.0, height: 1.0 },
            landmarks: [[0.0; 2]; 5],
            score,
        };
        let scores = |v: Vec<Detection>| v.iter().map(|d| d.score).collect::<Vec<_>>();
        let sorted = || vec![d(0.7), d(0.65), d(0.5)];
        // Best face above its lower bar; the others must reach the stricter one.
        assert_eq!(scores(gate(sorted(), 0.6, 0.9)), vec![0.7]);
        assert_eq!(scores(gate(sorted(), 0.6, 0.6)), vec![0.7, 0.65]);
        // The best face's bar only ever relaxes the others'.
        assert_eq!(scores(gate(sorted(), 0.8, 0.5)), vec![0.7, 0.65, 0.5]);
        assert_eq!(scores(gate(sorted(), 0.8, 0.9)), Vec::<f32>::new());
        assert_eq!(scores(gate(vec![d(0.95), d(0.92), d(0.3)], 0.6, 0.9)), vec![0.95, 0.92]);
        assert!(gate(Vec::new(), 0.5, 0.5).is_empty());
    }

    #[test]
    fn tensor_is_nchw_in_the_model_channel_order_with_zero_padding() {
        let img = RgbImage::from_fn(2, 1, |x, _| image::Rgb([10 + x as u8, 20, 30]));
        let spec =
            InputSpec { width: None, height: None, channel_order: ChannelOrder::Bgr, mean: [0.0; 3], std: [1.0; 3] };
        let v = image_to_tensor(&img, &spec, 4, 2);
        assert_eq!(v.len(), 3 * 2 * 4);
        // channel 0 is blue
        assert_eq!(&v[0..4], &[30.0, 30.0, 0.0, 0.0]);
        assert_eq!(&v[4..8], &[0.0; 4]);
        // channel 2 is red
        assert_eq!(&v[16..20], &[10.0, 11.0, 0.0, 0.0]);
        let spec = InputSpec { channel_order: ChannelOrder::Rgb, mean: [10.0, 0.0, 0.0], std: [2.0, 1.0, 1.0], ..spec };
        let v = image_to_tensor(&img, &spec, 2, 1);
        assert_eq!(&v[0..2], &[0.0, 0.5]);
    }
}
