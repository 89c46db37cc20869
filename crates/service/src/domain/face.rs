//! A found face as every layer sees it: where it is (box, five landmarks,
//! detector score) and how usable it is (quality signals).
use serde::{Deserialize, Serialize};

use super::geometry::{BBox, Point};

/// One detected face, in the coordinates of the image it was found in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    #[serde(rename = "box")]
    pub bbox: BBox,
    /// Right eye, left eye, nose tip, right and left mouth corners.
    pub landmarks: [Point; 5],
    pub score: f32,
}

/// Simple, model-independent quality signals, so enrollment can refuse a
/// poor photo with a reason: how big the face is and how sharp.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// The smaller side of the face box, in original-image pixels.
    pub face_size: f32,
    /// Distance between the eye centres, in original-image pixels.
    pub eye_distance: f32,
    /// Variance of the Laplacian over the aligned grey crop; sharp faces score
    /// in the hundreds, heavy blur in the tens or less.
    pub sharpness: f32,
}
