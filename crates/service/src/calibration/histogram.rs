//! Counts of cosine similarities in bins of 0.001 over [-1, 1]: how a
//! reference distribution is stored (in `models/reference/`) and how the
//! gallery's own scores are summarised.
use serde::{Deserialize, Serialize};

/// Bins per unit of similarity.
const PER_UNIT: f64 = 1000.0;
/// Bins over [-1, 1].
const BINS: usize = 2000;

/// Similarity counts by bin; bin `i` holds `[-1 + i/1000, -1 + (i+1)/1000)`
/// (the last bin also holds 1.0).
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self { counts: vec![0; BINS], total: 0 }
    }
}

/// The bin of `s`; a score within 1e-7 of a bin's lower edge (a decimal
/// edge such as 0.2 is not exact in binary) falls in that bin.
fn bin(s: f32) -> usize {
    (((f64::from(s) + 1.0) * PER_UNIT + 1e-4).floor().max(0.0) as usize).min(BINS - 1)
}

/// The lower edge of bin `i`.
fn lower(i: usize) -> f64 {
    i as f64 / PER_UNIT - 1.0
}

impl Histogram {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one similarity (NaN is ignored).
    pub fn add(&mut self, s: f32) {
        if !s.is_nan() {
            self.counts[bin(s)] += 1;
            self.total += 1;
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Observations at or above `t`; the bin holding `t` contributes the
    /// share of it above `t` (scores spread evenly within a bin).
    pub fn at_or_above(&self, t: f64) -> f64 {
        if t <= -1.0 {
            return self.total as f64;
        }
        if t > 1.0 {
            return 0.0;
        }
        let x = (t + 1.0) * PER_UNIT;
        let i = ((x + 1e-4).floor().max(0.0) as usize).min(BINS - 1);
        let above: u64 = self.counts[i + 1..].iter().sum();
        // The share of bin i above t (all of it when t is at its lower edge).
        let share = (1.0 - (x - i as f64)).clamp(0.0, 1.0);
        let share = if share > 1.0 - 1e-4 { 1.0 } else { share };
        above as f64 + share * self.counts[i] as f64
    }

    /// The share of observations at or above `t` (0 when empty).
    pub fn share_at_or_above(&self, t: f64) -> f64 {
        if self.total == 0 { 0.0 } else { self.at_or_above(t) / self.total as f64 }
    }

    /// Non-empty bins from the highest down: (lower edge, count).
    pub fn from_top(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.counts.iter().enumerate().rev().filter(|&(_, &c)| c > 0).map(|(i, &c)| (lower(i), c))
    }
}

/// Stored as the run of bins from the first non-empty one to the last.
#[derive(Serialize, Deserialize)]
struct Stored {
    /// Lower edge of the first stored bin.
    first: f64,
    bin_width: f64,
    counts: Vec<u64>,
}

impl Serialize for Histogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (lo, hi) = match (self.counts.iter().position(|&c| c > 0), self.counts.iter().rposition(|&c| c > 0)) {
            (Some(lo), Some(hi)) => (lo, hi + 1),
            _ => (0, 0),
        };
        let first = (lower(lo) * PER_UNIT).round() / PER_UNIT;
        Stored { first, bin_width: 1.0 / PER_UNIT, counts: self.counts[lo..hi].to_vec() }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Histogram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let stored = Stored::deserialize(d)?;
        if (stored.bin_width * PER_UNIT - 1.0).abs() > 1e-9 {
            return Err(D::Error::custom(format!("bin_width must be {}", 1.0 / PER_UNIT)));
        }
        let start = ((stored.first + 1.0) * PER_UNIT).round();
        if !(0.0..=BINS as f64).contains(&start) || start as usize + stored.counts.len() > BINS {
            return Err(D::Error::custom("the bins fall outside [-1, 1]"));
        }
        let mut h = Histogram::new();
        h.counts[start as usize..start as usize + stored.counts.len()].copy_from_slice(&stored.counts);
        h.total = stored.counts.iter().sum();
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_hold_their_lower_edge_and_one_goes_in_the_last() {
        let mut h = Histogram::new();
        for s in [-1.0, -0.9995, 0.0, 0.4999, 0.5, 1.0, f32::NAN, 7.0, -3.0] {
            h.add(s);
        }
        assert_eq!(h.total(), 8);
        // 0.5, 1.0 and 7.0 (clamped into the last bin) are at or above 0.5.
        assert_eq!(h.at_or_above(0.5), 3.0);
        // Half of 0.4999's bin [0.499, 0.5) lies above 0.4995.
        assert!((h.at_or_above(0.4995) - 3.5).abs() < 1e-9);
        assert_eq!(h.at_or_above(-1.0), 8.0);
        assert_eq!(h.at_or_above(1.5), 0.0);
    }

    #[test]
    fn the_tail_share_never_increases_with_the_threshold() {
        let mut h = Histogram::new();
        for i in 0..1000 {
            h.add((i as f32 / 1000.0).powi(2) - 0.3);
        }
        let mut last = f64::INFINITY;
        for t in (-1100..=1100).map(|t| t as f64 / 1000.0) {
            let s = h.share_at_or_above(t);
            assert!(s <= last + 1e-12 && (0.0..=1.0).contains(&s), "{t}: {s} after {last}");
            last = s;
        }
    }

    #[test]
    fn stored_form_reads_back_equal_and_rejects_other_bins() {
        let mut h = Histogram::new();
        for s in [0.12, 0.125, 0.3, -0.2] {
            h.add(s);
        }
        let json = serde_json::to_string(&h).unwrap();
        assert!(json.starts_with(r#"{"first":-0.2,"bin_width":0.001,"counts":[1,"#), "{json}");
        assert_eq!(serde_json::from_str::<Histogram>(&json).unwrap(), h);
        let empty = serde_json::to_string(&Histogram::new()).unwrap();
        assert_eq!(serde_json::from_str::<Histogram>(&empty).unwrap(), Histogram::new());
        assert!(serde_json::from_str::<Histogram>(r#"{"first":0.9995,"bin_width":0.001,"counts":[1,1]}"#).is_err());
        assert!(serde_json::from_str::<Histogram>(r#"{"first":0,"bin_width":0.01,"counts":[1]}"#).is_err());
    }
}
