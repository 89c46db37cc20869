//! Open-set 1:N calibration (`visage eval identify`): how often a stranger is
//! named as someone (false-positive identification rate, FPIR) and how often
//! an enrolled person is found (detection and identification rate, DIR), per
//! threshold, from a file of `cluster_id,image` rows (one cluster per person).
//!
//! The first image of each person is enrolled; every other image is a
//! genuine probe. Each probe is also searched against the gallery *without*
//! its own person, as a stranger would be.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use serde::Serialize;

use visage_service::domain::similarity::dot;

/// Images grouped by person, in file order.
pub fn parse_clusters(text: &str, root: &Path) -> Result<Vec<Vec<PathBuf>>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().context("empty clusters file")?.split(',').map(str::trim).collect();
    let col = |n: &str| header.iter().position(|c| *c == n).with_context(|| format!("the header lacks {n:?}"));
    let (ic, ii) = (col("cluster_id")?, col("image")?);
    let mut clusters: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let (c, i) = (f.get(ic).context("short line")?, f.get(ii).context("short line")?);
        clusters.entry(c.to_string()).or_default().push(root.join(i));
    }
    ensure!(clusters.len() >= 2, "need at least two persons");
    Ok(clusters.into_values().collect())
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub threshold: f32,
    /// Genuine probes whose best match is the right person at or above the threshold.
    pub dir: f64,
    /// Stranger probes named as someone.
    pub fpir: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    pub persons: usize,
    pub genuine_probes: usize,
    pub stranger_probes: usize,
    /// Lowest genuine best-match similarity, and highest stranger similarity.
    pub genuine_min: f32,
    pub stranger_max: f32,
    pub rows: Vec<Row>,
}

/// `embeddings[p][i]`: embedding of person p's image i (None: no face).
pub fn calibrate(embeddings: &[Vec<Option<Vec<f32>>>], thresholds: &[f32]) -> Calibration {
    let gallery: Vec<Option<&Vec<f32>>> = embeddings.iter().map(|imgs| imgs.first().and_then(|e| e.as_ref())).collect();
    // For each probe: (best person, its similarity) with and without its own person.
    let mut genuine = Vec::new();
    let mut stranger = Vec::new();
    for (p, imgs) in embeddings.iter().enumerate() {
        for probe in imgs.iter().skip(1) {
            let Some(q) = probe else {
                genuine.push((usize::MAX, f32::NEG_INFINITY));
                continue;
            };
            let scores: Vec<(usize, f32)> =
                gallery.iter().enumerate().filter_map(|(g, e)| e.map(|e| (g, dot(q, e)))).collect();
            let best =
                scores.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap_or((usize::MAX, f32::NEG_INFINITY));
            // A wrong best match counts as a miss whatever its similarity.
            genuine.push((if best.0 == p { p } else { usize::MAX }, best.1));
            let other = scores.iter().filter(|(g, _)| *g != p).map(|s| s.1).fold(f32::NEG_INFINITY, f32::max);
            stranger.push(other);
        }
    }
    let rows = thresholds
        .iter()
        .map(|&t| Row {
            threshold: t,
            dir: genuine.iter().filter(|(p, s)| *p != usize::MAX && *s >= t).count() as f64
                / genuine.len().max(1) as f64,
            fpir: stranger.iter().filter(|s| **s >= t).count() as f64 / stranger.len().max(1) as f64,
        })
        .collect();
    Calibration {
        persons: embeddings.len(),
        genuine_probes: genuine.len(),
        stranger_probes: stranger.len(),
        genuine_min: genuine.iter().filter(|(p, _)| *p != usize::MAX).map(|g| g.1).fold(f32::INFINITY, f32::min),
        stranger_max: stranger.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strangers_and_genuine_probes_are_counted_per_threshold() {
        let e = |x: f32, y: f32| Some(vec![x, y]);
        // person 0 enrolled at (1,0), probe (0.8,0.6): genuine 0.8, vs person 1 (0,1): 0.6
        // person 1 enrolled at (0,1), probe (0,1): genuine 1.0, vs person 0: 0.0
        let emb = vec![vec![e(1.0, 0.0), e(0.8, 0.6)], vec![e(0.0, 1.0), e(0.0, 1.0)]];
        let c = calibrate(&emb, &[0.5, 0.7, 0.9]);
        assert_eq!((c.genuine_probes, c.stranger_probes), (2, 2));
        assert!((c.stranger_max - 0.6).abs() < 1e-6 && (c.genuine_min - 0.8).abs() < 1e-6);
        assert_eq!(c.rows[0].fpir, 0.5);
        assert_eq!(c.rows[1].fpir, 0.0);
        assert_eq!(c.rows[1].dir, 1.0);
        assert_eq!(c.rows[2].dir, 0.5);
    }
}
