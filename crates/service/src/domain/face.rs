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

/// Which face of a photo to use. The one vocabulary of the pipeline, the
/// service and both edges (each edge accepts the subset that makes sense
/// where it is asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaceChoice {
    /// Every face, largest first.
    All,
    /// Exactly one face: a photo with several is refused.
    Single,
    /// The largest face.
    Largest,
    /// The face whose centre is nearest the photo's centre (LFW's convention
    /// for its subject).
    Central,
}

impl FaceChoice {
    pub const ALL: [FaceChoice; 4] = [FaceChoice::All, FaceChoice::Single, FaceChoice::Largest, FaceChoice::Central];

    /// Its name in the API and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            FaceChoice::All => "all",
            FaceChoice::Single => "single",
            FaceChoice::Largest => "largest",
            FaceChoice::Central => "central",
        }
    }
}

impl std::str::FromStr for FaceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| format!("{s:?} is not all, single, largest or central"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_face_choice_reads_back_from_its_name_in_text_and_json() {
        for c in FaceChoice::ALL {
            assert_eq!(c.name().parse::<FaceChoice>(), Ok(c));
            assert_eq!(serde_json::from_value::<FaceChoice>(serde_json::json!(c.name())).unwrap(), c);
        }
        assert!("Largest".parse::<FaceChoice>().is_err());
    }
}
