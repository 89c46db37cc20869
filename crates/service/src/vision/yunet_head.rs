//! YuNet's anchor-free head: turning the per-stride grids of scores, box
//! offsets and landmark offsets into candidate faces in network pixels.
//!
//! For stride `s` the network sees a `cols x rows` grid (`cols = W / s`), row
//! major. Cell `(r, c)` predicts the box centre `((c + dx) s, (r + dy) s)`, the
//! size `(exp(dw) s, exp(dh) s)` and each landmark `((c + lx) s, (r + ly) s)`;
//! its score is `sqrt(cls * obj)` with both clamped to [0, 1] (as OpenCV's
//! `FaceDetectorYN` decodes it).
use crate::domain::{BBox, Detection};

/// One stride's raw outputs, each row-major over the grid.
pub struct Level<'a> {
    pub stride: usize,
    pub cls: &'a [f32],
    pub obj: &'a [f32],
    /// 4 per cell: dx, dy, log w, log h.
    pub bbox: &'a [f32],
    /// 10 per cell: 5 landmarks (x, y).
    pub kps: &'a [f32],
}

/// Appends every cell of `level` whose score reaches `threshold` to `out`,
/// for a network input `width x height` (multiples of the stride).
pub fn decode_level(level: &Level, width: usize, height: usize, threshold: f32, out: &mut Vec<Detection>) {
    let s = level.stride;
    let cols = width / s;
    let rows = height / s;
    let cells =
        (cols * rows).min(level.cls.len()).min(level.obj.len()).min(level.bbox.len() / 4).min(level.kps.len() / 10);
    let sf = s as f32;
    for idx in 0..cells {
        let score = (level.cls[idx].clamp(0.0, 1.0) * level.obj[idx].clamp(0.0, 1.0)).sqrt();
        if score < threshold || !score.is_finite() {
            continue;
        }
        let (r, c) = ((idx / cols) as f32, (idx % cols) as f32);
        let b = &level.bbox[idx * 4..idx * 4 + 4];
        let cx = (c + b[0]) * sf;
        let cy = (r + b[1]) * sf;
        let w = b[2].exp() * sf;
        let h = b[3].exp() * sf;
        if !(w.is_finite() && h.is_finite()) {
            continue;
        }
        let k = &level.kps[idx * 10..idx * 10 + 10];
        let mut landmarks = [[0.0; 2]; 5];
        for (n, lm) in landmarks.iter_mut().enumerate() {
            *lm = [(k[2 * n] + c) * sf, (k[2 * n + 1] + r) * sf];
        }
        out.push(Detection { bbox: BBox { x: cx - w / 2.0, y: cy - h / 2.0, width: w, height: h }, landmarks, score });
    }
}

/// Greedy non-maximum suppression: keeps the highest-scoring candidates first
/// and drops any whose IoU with a kept one exceeds `iou_threshold`. Returns at
/// most `top_k`, best first. NaN scores sort last.
pub fn nms(mut dets: Vec<Detection>, iou_threshold: f32, top_k: usize) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for d in dets {
        if kept.len() >= top_k {
            break;
        }
        if kept.iter().all(|k| k.bbox.iou(&d.bbox) <= iou_threshold) {
            kept.push(d);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, y: f32, size: f32, score: f32) -> Detection {
        Detection { bbox: BBox { x, y, width: size, height: size }, landmarks: [[0.0; 2]; 5], score }
    }

    #[test]
    fn nms_keeps_the_highest_score_and_drops_its_overlaps() {
        // Given lowest first, to catch a sort in the wrong direction.
        let dets = vec![det(1.0, 1.0, 10.0, 0.6), det(0.0, 0.0, 10.0, 0.95), det(50.0, 50.0, 10.0, 0.7)];
        let kept = nms(dets, 0.3, 10);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.95);
        assert_eq!(kept[1].score, 0.7);
    }

    #[test]
    fn nms_keeps_overlaps_below_the_threshold_and_honours_top_k() {
        // IoU of these two is 1/3.
        let dets = vec![det(0.0, 0.0, 10.0, 0.9), det(5.0, 0.0, 10.0, 0.8), det(40.0, 0.0, 10.0, 0.7)];
        assert_eq!(nms(dets.clone(), 0.3, 10).len(), 2);
        assert_eq!(nms(dets.clone(), 0.4, 10).len(), 3);
        let top = nms(dets, 0.4, 1);
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].score, 0.9);
    }

    #[test]
    fn decode_places_boxes_and_landmarks_on_the_grid() {
        // A 64x32 input at stride 16 is a 4x2 grid; light up row 1, col 2 (idx 6).
        let (w, h, s) = (64, 32, 16);
        let cells = (w / s) * (h / s);
        let mut cls = vec![0.0; cells];
        let mut obj = vec![0.0; cells];
        let mut bbox = vec![0.0; cells * 4];
        let mut kps = vec![0.0; cells * 10];
        cls[6] = 0.81;
        obj[6] = 1.0;
        bbox[24..28].copy_from_slice(&[0.5, 0.25, 2f32.ln(), 0.0]);
        for n in 0..5 {
            kps[60 + 2 * n] = n as f32 * 0.1;
            kps[60 + 2 * n + 1] = -0.5;
        }
        // A cell that clears cls but whose obj is 0 must not appear.
        cls[0] = 1.0;
        let level = Level { stride: s, cls: &cls, obj: &obj, bbox: &bbox, kps: &kps };
        let mut out = Vec::new();
        decode_level(&level, w, h, 0.5, &mut out);
        assert_eq!(out.len(), 1);
        let d = &out[0];
        assert!((d.score - 0.9).abs() < 1e-6);
        // centre ((2 + 0.5) * 16, (1 + 0.25) * 16) = (40, 20); size (32, 16)
        assert!((d.bbox.x - 24.0).abs() < 1e-4 && (d.bbox.y - 12.0).abs() < 1e-4);
        assert!((d.bbox.width - 32.0).abs() < 1e-4 && (d.bbox.height - 16.0).abs() < 1e-4);
        for n in 0..5 {
            assert!((d.landmarks[n][0] - (2.0 + n as f32 * 0.1) * 16.0).abs() < 1e-4);
            assert!((d.landmarks[n][1] - 8.0).abs() < 1e-4);
        }
        // Out-of-range scores are clamped, not amplified.
        let mut out = Vec::new();
        cls[6] = 4.0;
        let level = Level { stride: s, cls: &cls, obj: &obj, bbox: &bbox, kps: &kps };
        decode_level(&level, w, h, 0.5, &mut out);
        assert!(out.iter().all(|d| d.score <= 1.0));
    }
}
