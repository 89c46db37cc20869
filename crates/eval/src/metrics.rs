//! Verification metrics over scored pairs (higher score = more alike):
//! k-fold accuracy, accuracy at a threshold, TAR at a FAR, ROC AUC and EER.

/// A similarity score with its label and fold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub score: f32,
    pub same: bool,
    pub fold: usize,
}

/// Fraction of pairs decided right when `score >= threshold` means "same".
pub fn accuracy_at(pairs: &[Scored], threshold: f32) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let right = pairs.iter().filter(|p| (p.score >= threshold) == p.same).count();
    right as f64 / pairs.len() as f64
}

/// The threshold that maximises accuracy on `pairs` (midway between the two
/// scores where the best split falls).
pub fn best_threshold(pairs: &[Scored]) -> f32 {
    let mut s: Vec<&Scored> = pairs.iter().collect();
    if s.is_empty() {
        return 0.0;
    }
    s.sort_by(|a, b| a.score.total_cmp(&b.score));
    // Threshold below everything: all accepted, right = number of positives.
    let positives = s.iter().filter(|p| p.same).count() as i64;
    let (mut right, mut best, mut best_t) = (positives, positives, s[0].score - 1e-3);
    for i in 0..s.len() {
        // Move the threshold above s[i]: it becomes rejected.
        right += if s[i].same { -1 } else { 1 };
        let tied_next = i + 1 < s.len() && s[i + 1].score == s[i].score;
        if !tied_next && right > best {
            best = right;
            best_t = if i + 1 < s.len() { (s[i].score + s[i + 1].score) / 2.0 } else { s[i].score + 1e-3 };
        }
    }
    best_t
}

/// Accuracy of each fold with a threshold chosen on the other folds.
pub fn kfold_accuracy(pairs: &[Scored], folds: usize) -> Vec<(f64, f32)> {
    (0..folds)
        .filter(|f| pairs.iter().any(|p| p.fold == *f))
        .map(|f| {
            let train: Vec<Scored> = pairs.iter().filter(|p| p.fold != f).copied().collect();
            let test: Vec<Scored> = pairs.iter().filter(|p| p.fold == f).copied().collect();
            let t = best_threshold(&train);
            (accuracy_at(&test, t), t)
        })
        .collect()
}

/// Mean and (population) standard deviation.
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (mean, (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt())
}

/// True-accept rate at the strictest threshold whose false-accept rate is at
/// most `far`, and that threshold (a pair is accepted when its score is
/// strictly above it).
pub fn tar_at_far(pairs: &[Scored], far: f64) -> (f64, f32) {
    let mut neg: Vec<f32> = pairs.iter().filter(|p| !p.same).map(|p| p.score).collect();
    let pos: Vec<f32> = pairs.iter().filter(|p| p.same).map(|p| p.score).collect();
    if neg.is_empty() || pos.is_empty() {
        return (0.0, 0.0);
    }
    neg.sort_by(|a, b| b.total_cmp(a));
    let allowed = (far * neg.len() as f64).floor() as usize;
    let threshold = if allowed >= neg.len() { f32::NEG_INFINITY } else { neg[allowed] };
    let tar = pos.iter().filter(|&&s| s > threshold).count() as f64 / pos.len() as f64;
    (tar, threshold)
}

/// Area under the ROC curve: the probability that a matched pair outscores a
/// mismatched one (ties count half).
pub fn roc_auc(pairs: &[Scored]) -> f64 {
    let mut s: Vec<&Scored> = pairs.iter().collect();
    s.sort_by(|a, b| a.score.total_cmp(&b.score));
    let (np, nn) = (s.iter().filter(|p| p.same).count() as f64, s.iter().filter(|p| !p.same).count() as f64);
    if np == 0.0 || nn == 0.0 {
        return 0.0;
    }
    // Sum of positive ranks with average ranks for ties (Mann-Whitney U).
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < s.len() {
        let mut j = i;
        while j + 1 < s.len() && s[j + 1].score == s[i].score {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += s[i..=j].iter().filter(|p| p.same).count() as f64 * avg_rank;
        i = j + 1;
    }
    (rank_sum - np * (np + 1.0) / 2.0) / (np * nn)
}

/// Equal error rate: where the false-accept and false-reject rates meet
/// (their mean at the threshold where they are closest).
pub fn eer(pairs: &[Scored]) -> f64 {
    let np = pairs.iter().filter(|p| p.same).count() as f64;
    let nn = pairs.iter().filter(|p| !p.same).count() as f64;
    if np == 0.0 || nn == 0.0 {
        return 0.0;
    }
    let mut thresholds: Vec<f32> = pairs.iter().map(|p| p.score).collect();
    thresholds.sort_by(|a, b| a.total_cmp(b));
    thresholds.dedup();
    thresholds.push(f32::INFINITY);
    let mut best = (f64::INFINITY, 1.0);
    for t in thresholds {
        let far = pairs.iter().filter(|p| !p.same && p.score >= t).count() as f64 / nn;
        let frr = pairs.iter().filter(|p| p.same && p.score < t).count() as f64 / np;
        let gap = (far - frr).abs();
        if gap < best.0 {
            best = (gap, (far + frr) / 2.0);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(score: f32, same: bool, fold: usize) -> Scored {
        Scored { score, same, fold }
    }

    #[test]
    fn separable_scores_are_perfect() {
        let pairs: Vec<Scored> =
            (0..20).map(|i| sc(if i % 2 == 0 { 0.8 + i as f32 * 0.001 } else { 0.1 }, i % 2 == 0, i % 10)).collect();
        let t = best_threshold(&pairs);
        assert!(t > 0.1 && t < 0.8, "{t}");
        assert_eq!(accuracy_at(&pairs, t), 1.0);
        assert_eq!(roc_auc(&pairs), 1.0);
        assert_eq!(eer(&pairs), 0.0);
        assert_eq!(tar_at_far(&pairs, 0.001).0, 1.0);
        let folds = kfold_accuracy(&pairs, 10);
        assert_eq!(folds.len(), 10);
        assert!(folds.iter().all(|(a, _)| *a == 1.0));
    }

    #[test]
    fn overlapping_scores_give_known_figures() {
        // positives 0.9 0.6 0.3, negatives 0.5 0.2 0.1
        let pairs = [
            sc(0.9, true, 0),
            sc(0.6, true, 0),
            sc(0.3, true, 0),
            sc(0.5, false, 0),
            sc(0.2, false, 0),
            sc(0.1, false, 0),
        ];
        // best split: accept >= 0.25 (5/6) -> midway between 0.2 and 0.3
        let t = best_threshold(&pairs);
        assert!((t - 0.25).abs() < 1e-6, "{t}");
        assert!((accuracy_at(&pairs, t) - 5.0 / 6.0).abs() < 1e-9);
        // 8 of 9 (pos, neg) orderings are right
        assert!((roc_auc(&pairs) - 8.0 / 9.0).abs() < 1e-9);
        // at FAR 0 only scores above the top negative (0.5) count: 2 of 3
        let (tar, thr) = tar_at_far(&pairs, 0.0);
        assert!((tar - 2.0 / 3.0).abs() < 1e-9 && thr == 0.5);
        let e = eer(&pairs);
        assert!((e - 1.0 / 3.0).abs() < 1e-9, "{e}");
    }

    #[test]
    fn ties_in_auc_count_half_and_mean_std_is_population() {
        let pairs = [sc(0.5, true, 0), sc(0.5, false, 0)];
        assert!((roc_auc(&pairs) - 0.5).abs() < 1e-9);
        let (m, s) = mean_std(&[1.0, 3.0]);
        assert_eq!((m, s), (2.0, 1.0));
    }
}
