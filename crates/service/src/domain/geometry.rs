//! Plain geometry shared by the pipeline stages: points, boxes, IoU.
use serde::{Deserialize, Serialize};

/// A point in image pixels (x to the right, y down).
pub type Point = [f32; 2];

/// An axis-aligned box in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl BBox {
    pub fn area(&self) -> f32 {
        self.width.max(0.0) * self.height.max(0.0)
    }

    pub fn center(&self) -> Point {
        [self.x + self.width / 2.0, self.y + self.height / 2.0]
    }

    /// Intersection over union; 0 when either box is empty.
    pub fn iou(&self, other: &BBox) -> f32 {
        let x1 = self.x.max(other.x);
        let y1 = self.y.max(other.y);
        let x2 = (self.x + self.width).min(other.x + other.width);
        let y2 = (self.y + self.height).min(other.y + other.height);
        let inter = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    pub fn contains(&self, p: Point) -> bool {
        p[0] >= self.x && p[0] <= self.x + self.width && p[1] >= self.y && p[1] <= self.y + self.height
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = BBox { x: 0.0, y: 0.0, width: 10.0, height: 10.0 };
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
        let b = BBox { x: 20.0, y: 20.0, width: 10.0, height: 10.0 };
        assert_eq!(a.iou(&b), 0.0);
        let c = BBox { x: 5.0, y: 0.0, width: 10.0, height: 10.0 };
        // intersection 50, union 150
        assert!((a.iou(&c) - 1.0 / 3.0).abs() < 1e-6);
        let empty = BBox { x: 0.0, y: 0.0, width: 0.0, height: 0.0 };
        assert_eq!(empty.iou(&empty), 0.0);
    }
}
