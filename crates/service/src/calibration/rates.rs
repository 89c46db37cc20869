//! Error rates from score distributions: the false-accept rate (FAR) of a
//! threshold from impostor scores, with an exponential tail beyond the
//! highest observed ones; the false-reject rate (FRR) from genuine scores;
//! thresholds that meet a target; and the 1:N false-positive identification
//! rate (FPIR) for a gallery of N faces.
use super::Histogram;

/// Impostor scores kept for the tail fit: the exponential tail replaces the
/// counts above the score the top [`TAIL_COUNT`] reach.
const TAIL_COUNT: u64 = 50;
/// Smallest tail scale (a similarity), so a tail of a few tied bins stays a slope.
const MIN_SCALE: f64 = 0.002;

/// Genuine and impostor scores of one embedder, and the rates they imply.
#[derive(Debug, Clone)]
pub struct ScoreModel {
    genuine: Histogram,
    impostor: Histogram,
    tail: Option<Tail>,
}

/// `FAR(t) = share * exp(-(t - start) / scale)` for `t > start`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tail {
    start: f64,
    share: f64,
    scale: f64,
}

/// The exponential tail fitted to the top [`TAIL_COUNT`] impostor scores
/// (bin centres' mean excess over the bin edge where they begin).
fn fit_tail(impostor: &Histogram) -> Option<Tail> {
    let n = impostor.total();
    if n < 4 * TAIL_COUNT {
        return None;
    }
    let mut seen = 0u64;
    let mut start = 1.0;
    for (edge, c) in impostor.from_top() {
        seen += c;
        start = edge;
        if seen >= TAIL_COUNT {
            break;
        }
    }
    let excess: f64 = impostor
        .from_top()
        .take_while(|(edge, _)| *edge >= start)
        .map(|(edge, c)| (edge + 0.0005 - start) * c as f64)
        .sum();
    let scale = (excess / seen as f64).max(MIN_SCALE);
    Some(Tail { start, share: seen as f64 / n as f64, scale })
}

impl ScoreModel {
    pub fn new(genuine: Histogram, impostor: Histogram) -> Self {
        let tail = fit_tail(&impostor);
        Self { genuine, impostor, tail }
    }

    pub fn genuine(&self) -> &Histogram {
        &self.genuine
    }

    pub fn impostor(&self) -> &Histogram {
        &self.impostor
    }

    /// The share of impostor comparisons scoring `t` or more.
    pub fn far(&self, t: f64) -> f64 {
        match self.tail {
            Some(tail) if t > tail.start => tail.share * (-(t - tail.start) / tail.scale).exp(),
            _ => self.impostor.share_at_or_above(t),
        }
    }

    /// The share of genuine comparisons scoring below `t` (None without genuine scores).
    pub fn frr(&self, t: f64) -> Option<f64> {
        (self.genuine.total() > 0).then(|| 1.0 - self.genuine.share_at_or_above(t))
    }

    /// The lowest threshold whose FAR is at most `target`.
    pub fn threshold_for_far(&self, target: f64) -> f64 {
        threshold_for(target, |t| self.far(t))
    }
}

/// The lowest `t` in [-1, 1] with `rate(t) <= target`, for a rate that
/// never increases with `t` (bisection to 1e-6).
pub fn threshold_for(target: f64, rate: impl Fn(f64) -> f64) -> f64 {
    let (mut lo, mut hi) = (-1.0f64, 1.0f64);
    if rate(lo) <= target {
        return lo;
    }
    while hi - lo > 1e-6 {
        let mid = 0.5 * (lo + hi);
        if rate(mid) <= target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// FPIR for a gallery of `faces`: a stranger is named when any enrolled face
/// scores at or above the threshold; with a per-comparison FAR `far`,
/// assuming comparisons independent: `1 - (1 - far)^faces`.
pub fn fpir(far: f64, faces: usize) -> f64 {
    -((faces as f64) * (-far.clamp(0.0, 1.0)).ln_1p()).exp_m1()
}

/// The per-comparison FAR at which a gallery of `faces` has FPIR `target`
/// (the inverse of [`fpir`]).
pub fn far_for_fpir(target: f64, faces: usize) -> f64 {
    -((-target.clamp(0.0, 1.0)).ln_1p() / faces.max(1) as f64).exp_m1()
}

/// The upper end of the 95 % Wilson score interval of a rate of `hits` in `n`.
pub fn wilson_upper(hits: f64, n: f64) -> f64 {
    if n <= 0.0 {
        return 1.0;
    }
    let z = 1.959_964f64;
    let p = (hits / n).clamp(0.0, 1.0);
    let z2n = z * z / n;
    let centre = p + z2n / 2.0;
    let spread = z * (p * (1.0 - p) / n + z2n / (4.0 * n)).sqrt();
    ((centre + spread) / (1.0 + z2n)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(scores: impl IntoIterator<Item = f32>) -> Histogram {
        let mut h = Histogram::new();
        scores.into_iter().for_each(|s| h.add(s));
        h
    }

    /// 10,000 impostor scores evenly over [-0.2, 0.3), genuine over [0.4, 0.9).
    fn model() -> ScoreModel {
        let impostor = histogram((0..10_000).map(|i| -0.2 + i as f32 * 0.5 / 10_000.0));
        let genuine = histogram((0..1_000).map(|i| 0.4 + i as f32 * 0.5 / 1_000.0));
        ScoreModel::new(genuine, impostor)
    }

    #[test]
    fn far_and_frr_are_the_shares_beyond_the_threshold() {
        let m = model();
        assert!((m.far(0.05) - 0.5).abs() < 1e-3, "{}", m.far(0.05));
        assert!((m.far(-0.2) - 1.0).abs() < 1e-9);
        assert!((m.frr(0.65).unwrap() - 0.5).abs() < 2e-3);
        assert_eq!(m.frr(0.3), Some(0.0));
        assert_eq!(ScoreModel::new(Histogram::new(), histogram([0.1])).frr(0.5), None);
    }

    #[test]
    fn the_tail_continues_the_counts_and_decays() {
        let m = model();
        // 20 scores a bin: the top 50 fill the three bins from 0.297, 0.6 % of all.
        let tail = m.tail.unwrap();
        assert!((tail.start - 0.297).abs() < 1e-9, "{tail:?}");
        assert!((m.far(tail.start) - 0.006).abs() < 5e-4);
        // Beyond the highest score the rate falls, but never to zero.
        assert!(m.far(0.31) < m.far(0.30) && m.far(0.31) > 0.0);
        assert!(m.far(0.5) < 1e-15);
    }

    #[test]
    fn thresholds_meet_their_target_at_the_lowest_value() {
        let m = model();
        for target in [0.5, 0.1, 1e-2, 1e-3, 1e-5] {
            let t = m.threshold_for_far(target);
            assert!(m.far(t) <= target * (1.0 + 1e-6), "{target}: far({t}) = {}", m.far(t));
            assert!(m.far(t - 1e-4) > target, "{target}: {t} is not the lowest");
        }
        assert_eq!(threshold_for(0.5, |_| 0.0), -1.0);
        assert_eq!(threshold_for(0.5, |_| 1.0), 1.0);
    }

    #[test]
    fn fpir_grows_with_the_gallery_and_inverts() {
        assert!((fpir(1e-4, 1) - 1e-4).abs() < 1e-12);
        assert!((fpir(1e-4, 100) - (1.0 - (1.0 - 1e-4f64).powi(100))).abs() < 1e-12);
        assert!((fpir(0.5, 2) - 0.75).abs() < 1e-12);
        for (target, n) in [(1e-2, 1), (1e-2, 1000), (1e-3, 10_000_000)] {
            let far = far_for_fpir(target, n);
            assert!((fpir(far, n) - target).abs() < target * 1e-9, "{target} {n}");
        }
        // A million faces need a per-comparison rate about a million times smaller.
        assert!((far_for_fpir(1e-2, 1_000_000) / 1.005e-8 - 1.0).abs() < 1e-3);
    }

    #[test]
    fn wilson_bounds_rates_from_few_observations() {
        // Nothing seen in 1,000: at most about 0.38 %.
        assert!((wilson_upper(0.0, 1000.0) - 0.00383).abs() < 1e-4);
        assert!(wilson_upper(50.0, 100.0) > 0.59 && wilson_upper(50.0, 100.0) < 0.6);
        assert_eq!(wilson_upper(1.0, 0.0), 1.0);
    }
}
