//! Decisions stated as error rates: genuine and impostor score distributions
//! (a reference measured on a public development set, shipped with each
//! embedder, and the gallery's own pairs), the false-accept and false-reject
//! rates they imply at a threshold, the thresholds that meet a target, and
//! the 1:N rate for a gallery of N faces. Pure computation: the service
//! supplies the embeddings.
mod answers;
mod histogram;
mod pairs;
mod policy;
mod rates;
mod reference;

pub use answers::{Answer, Faces, Rule, spread};
pub use histogram::Histogram;
pub use pairs::{FACES_PER_PERSON, Labelled, Owned, Pairs, score_pairs};
pub use policy::{DEFAULT_IDENTIFY_THRESHOLD, DEFAULT_VERIFY_THRESHOLD, EmbedderPolicy};
pub use rates::{ScoreModel, far_for_fpir, fpir, threshold_for, wilson_upper};
pub use reference::Reference;

/// Impostor pairs at or above a threshold the gallery must show before its
/// own rate is taken beside the reference's: fewer say little.
pub const MIN_SUPPORT: f64 = 5.0;

/// What the rates are estimated from: the reference, the gallery's own
/// pairs, or both.
#[derive(Debug, Clone, Default)]
pub struct Estimate {
    pub reference: Option<ScoreModel>,
    pub gallery: Option<ScoreModel>,
}

impl Estimate {
    /// The FAR expected at `t`: the reference's rate, raised to the
    /// gallery's where the gallery has at least [`MIN_SUPPORT`] impostor
    /// pairs at or above `t` (a population that resembles itself more than
    /// the reference's does is not trusted to the reference). Without a
    /// reference, the gallery's rate alone (with its fitted tail). None when
    /// there is nothing to estimate from.
    pub fn far(&self, t: f64) -> Option<f64> {
        let gallery = self.gallery.as_ref().filter(|g| g.impostor().total() > 0);
        match (&self.reference, gallery) {
            (None, None) => None,
            (None, Some(g)) => Some(g.far(t)),
            (Some(r), None) => Some(r.far(t)),
            (Some(r), Some(g)) => {
                let above = g.impostor().at_or_above(t);
                let own = if above >= MIN_SUPPORT { above / g.impostor().total() as f64 } else { 0.0 };
                Some(r.far(t).max(own))
            }
        }
    }

    /// The FRR expected at `t`, from the reference's genuine pairs (else the gallery's).
    pub fn frr(&self, t: f64) -> Option<f64> {
        self.reference.as_ref().and_then(|r| r.frr(t)).or_else(|| self.gallery.as_ref()?.frr(t))
    }

    /// The lowest threshold whose expected FAR is at most `target`.
    pub fn threshold_for_far(&self, target: f64) -> Option<f64> {
        self.far(0.0)?;
        Some(threshold_for(target, |t| self.far(t).unwrap_or(0.0)))
    }

    /// The expected FPIR of threshold `t` on a gallery of `faces`.
    pub fn fpir(&self, t: f64, faces: usize) -> Option<f64> {
        Some(fpir(self.far(t)?, faces))
    }

    /// The lowest threshold whose expected FPIR on `faces` faces is at most `target`.
    pub fn threshold_for_fpir(&self, target: f64, faces: usize) -> Option<f64> {
        self.threshold_for_far(far_for_fpir(target, faces.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(impostor: &[(f32, usize)]) -> ScoreModel {
        let mut h = Histogram::new();
        for &(s, n) in impostor {
            (0..n).for_each(|_| h.add(s));
        }
        let mut g = Histogram::new();
        g.add(0.9);
        ScoreModel::new(g, h)
    }

    #[test]
    fn the_gallery_raises_the_reference_only_where_it_has_support() {
        let reference = model(&[(0.0, 990), (0.5, 10)]);
        // The gallery's impostors run higher: 10 of 100 at 0.6, 2 at 0.8.
        let gallery = model(&[(0.0, 88), (0.6, 10), (0.8, 2)]);
        let e = Estimate { reference: Some(reference.clone()), gallery: Some(gallery) };
        let alone = Estimate { reference: Some(reference), gallery: None };
        // At 0.55 the gallery has 12 pairs above (12 %); the reference none above its tail.
        assert!((e.far(0.55).unwrap() - 0.12).abs() < 1e-9);
        assert!(alone.far(0.55).unwrap() < 0.01);
        // At 0.7 only 2 gallery pairs: too few, the reference decides.
        assert_eq!(e.far(0.7), alone.far(0.7));
        assert!(e.threshold_for_far(0.05).unwrap() > 0.6);
        assert!(alone.threshold_for_far(0.05).unwrap() < 0.51);
        assert_eq!(Estimate::default().far(0.5), None);
        assert_eq!(Estimate::default().threshold_for_far(0.1), None);
    }

    #[test]
    fn identification_thresholds_rise_with_the_gallery() {
        let e =
            Estimate { reference: Some(model(&[(-0.1, 1000), (0.1, 1000), (0.3, 500), (0.45, 60)])), gallery: None };
        let small = e.threshold_for_fpir(1e-2, 10).unwrap();
        let large = e.threshold_for_fpir(1e-2, 10_000).unwrap();
        assert!(large > small, "{small} {large}");
        assert!((e.fpir(large, 10_000).unwrap() - 1e-2).abs() < 1e-4);
    }
}
