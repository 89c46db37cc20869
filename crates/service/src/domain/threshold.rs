//! A decision threshold on cosine similarity, checked once where it enters
//! (a request, a flag): a finite number from 0 to 1. Below 0 every pair of
//! faces would match; an unchecked `f32` could be NaN, which matches nothing.
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Threshold(f32);

/// Why a number is not a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be a cosine similarity from 0 to 1")]
pub struct NotAThreshold;

impl Threshold {
    pub fn new(t: f32) -> Result<Self, NotAThreshold> {
        if t.is_finite() && (0.0..=1.0).contains(&t) { Ok(Self(t)) } else { Err(NotAThreshold) }
    }

    pub const fn get(self) -> f32 {
        self.0
    }
}

impl TryFrom<f32> for Threshold {
    type Error = NotAThreshold;

    fn try_from(t: f32) -> Result<Self, NotAThreshold> {
        Self::new(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_finite_similarities_from_0_to_1_are_thresholds() {
        for ok in [0.0, 0.363, 1.0] {
            assert_eq!(Threshold::new(ok).map(Threshold::get), Ok(ok));
        }
        for bad in [-0.1, 1.0001, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert_eq!(Threshold::new(bad), Err(NotAThreshold), "{bad}");
        }
    }
}
