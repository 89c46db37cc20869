//! `visage bench-clusters`: unassigned faces at scale. Synthetic faces of
//! the realistic gallery's shape (`synthetic`: persons of 1 to 3 photos,
//! drawn from Gaussians fitted to real embeddings) arrive in a random order
//! and are kept through the service's own path (`Service::keep_embeddings`:
//! the cluster planned, faces and merges written in one transaction, the
//! plan applied), in batches up to the last `arrivals`, which arrive one at
//! a time: their time is what a face arriving at that size takes to join or
//! start a cluster. Then `GET /v1/clusters`' work (`Service::list_clusters`,
//! first page of 50, at least 2 faces) is timed, memory is measured, and the
//! clusters are scored against the synthetic persons.
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use rand::SeedableRng as _;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom as _;
use serde::Serialize;

use crate::gallery_bench::{percentile, rss_bytes};
use crate::index_bench::cpu_model;
use crate::synthetic::{BETWEEN, SPREAD, Shape, WITHIN, generate};
use visage_service::admin::open_service;
use visage_service::sealing::DataKeys;
use visage_service::service::{ServiceConfig, ThresholdChoice};
use visage_service::vision::PipelineConfig;

#[derive(Debug, Clone)]
pub struct ClusterBenchOptions {
    pub sizes: Vec<usize>,
    /// Faces (at the end) that arrive one at a time and are timed.
    pub arrivals: usize,
    /// Faces a transaction before them.
    pub batch: usize,
    pub shape: PathBuf,
    pub models_dir: PathBuf,
    /// Folder for the temporary databases (None: the system temp folder).
    pub dir: Option<PathBuf>,
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct ClusterRow {
    pub faces: usize,
    /// Keeping (and clustering) every face but the timed arrivals, in batches.
    pub import_seconds: f64,
    pub import_faces_per_second: f64,
    /// One face arriving alone: planned, written (its own transaction), applied.
    pub join_p50_ms: f64,
    pub join_p99_ms: f64,
    pub clusters: usize,
    /// The first page of `GET /v1/clusters` (50 clusters of at least 2 faces).
    pub list_p50_ms: f64,
    pub list_p99_ms: f64,
    /// The clusters' own estimate, and the process's resident memory growth.
    pub bytes_per_face: f64,
    pub rss_bytes_per_face: f64,
    pub bcubed_f1: f64,
    pub pair_precision: f64,
    pub pair_recall: f64,
}

/// BCubed F1, pairwise precision and recall of `labels` against `truth`.
pub fn scores(truth: &[u32], labels: &[String]) -> (f64, f64, f64) {
    let n = truth.len() as f64;
    let (mut cluster, mut class, mut both) = (HashMap::new(), HashMap::new(), HashMap::new());
    for (t, l) in truth.iter().zip(labels) {
        *cluster.entry(l).or_insert(0usize) += 1;
        *class.entry(t).or_insert(0usize) += 1;
        *both.entry((t, l)).or_insert(0usize) += 1;
    }
    let (mut p, mut r) = (0.0, 0.0);
    for (t, l) in truth.iter().zip(labels) {
        let b = both[&(t, l)] as f64;
        p += b / cluster[l] as f64;
        r += b / class[t] as f64;
    }
    let (p, r) = (p / n, r / n);
    let pairs = |k: usize| (k * k.saturating_sub(1) / 2) as f64;
    let together: f64 = cluster.values().map(|&k| pairs(k)).sum();
    let same: f64 = class.values().map(|&k| pairs(k)).sum();
    let right: f64 = both.values().map(|&k| pairs(k)).sum();
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 1.0 };
    (2.0 * p * r / (p + r), ratio(right, together), ratio(right, same))
}

async fn measure(o: &ClusterBenchOptions, size: usize) -> Result<ClusterRow> {
    let shape = Shape::load(&o.shape)?;
    let maker = shape.maker(BETWEEN, WITHIN, SPREAD);
    let data = generate(&maker, size, 0, 2, 0);
    let mut order: Vec<usize> = (0..data.len()).collect();
    order.shuffle(&mut SmallRng::seed_from_u64(size as u64));
    let tmp = match &o.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let db = tmp.path().join("clusters.db");
    let config = ServiceConfig::default();
    let service = open_service(
        &o.models_dir,
        PipelineConfig::default(),
        &db,
        &DataKeys::none(),
        1,
        config,
        &ThresholdChoice::default(),
    )
    .await?;
    ensure!(service.engine().pipeline().embedder.dim() == data.dim, "the shape's dimension is not the embedder's");
    let rss_before = rss_bytes();
    let arrivals = o.arrivals.min(size);
    let (bulk, timed) = order.split_at(size - arrivals);
    let mut ids: Vec<(String, u32)> = Vec::with_capacity(size);
    let start = Instant::now();
    for chunk in bulk.chunks(o.batch.max(1)) {
        let rows: Vec<Vec<f32>> = chunk.iter().map(|&i| data.row(i).to_vec()).collect();
        let kept = service.keep_embeddings(&rows, "bench").await?;
        ids.extend(kept.into_iter().zip(chunk).map(|(r, &i)| (r.id, data.person[i])));
    }
    let import = start.elapsed().as_secs_f64();
    let mut joins: Vec<Duration> = Vec::with_capacity(arrivals);
    for &i in timed {
        let row = vec![data.row(i).to_vec()];
        let t = Instant::now();
        let kept = service.keep_embeddings(&row, "bench").await?;
        joins.push(t.elapsed());
        ids.extend(kept.into_iter().map(|r| (r.id, data.person[i])));
    }
    let rss_after = rss_bytes();
    joins.sort();
    let mut lists = Vec::with_capacity(200);
    for _ in 0..200 {
        let t = Instant::now();
        std::hint::black_box(service.list_clusters(2, 50, None).await?);
        lists.push(t.elapsed());
    }
    lists.sort();
    let (faces, clusters, bytes) = service.clusters_memory();
    let all = service.list_clusters(1, usize::MAX, None).await?;
    let label: HashMap<&str, &str> =
        all.clusters.iter().flat_map(|c| c.faces.iter().map(move |f| (f.id.as_str(), c.id.as_str()))).collect();
    let truth: Vec<u32> = ids.iter().map(|(_, p)| *p).collect();
    let labels: Vec<String> =
        ids.iter().map(|(f, _)| label.get(f.as_str()).unwrap_or(&f.as_str()).to_string()).collect();
    let (bcubed_f1, pair_precision, pair_recall) = scores(&truth, &labels);
    service.store().close().await;
    Ok(ClusterRow {
        faces,
        import_seconds: import,
        import_faces_per_second: bulk.len() as f64 / import.max(1e-9),
        join_p50_ms: percentile(&joins, 0.5),
        join_p99_ms: percentile(&joins, 0.99),
        clusters,
        list_p50_ms: percentile(&lists, 0.5),
        list_p99_ms: percentile(&lists, 0.99),
        bytes_per_face: bytes as f64 / faces.max(1) as f64,
        rss_bytes_per_face: rss_after.saturating_sub(rss_before) as f64 / faces.max(1) as f64,
        bcubed_f1,
        pair_precision,
        pair_recall,
    })
}

pub async fn run(o: ClusterBenchOptions) -> Result<()> {
    let avx2 = std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
    eprintln!(
        "CPU: {}; dot products {} (nothing forced); SQLite in a temporary folder; the last {} faces timed one at a time",
        cpu_model(),
        if avx2 { "with AVX2+FMA" } else { "portable" },
        o.arrivals
    );
    if !o.json {
        println!(
            "{:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7}",
            "faces",
            "import s",
            "faces/s",
            "join p50",
            "join p99",
            "clusters",
            "list p50",
            "list p99",
            "B/face",
            "RSS/face",
            "B3 F1",
            "pair P",
            "pair R"
        );
    }
    for &size in &o.sizes {
        let r = measure(&o, size).await?;
        if o.json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            println!(
                "{:>8} {:>9.1} {:>8.0} {:>8.2} {:>8.2} {:>8} {:>8.2} {:>8.2} {:>8.0} {:>8.0} {:>7.4} {:>7.4} {:>7.4}",
                r.faces,
                r.import_seconds,
                r.import_faces_per_second,
                r.join_p50_ms,
                r.join_p99_ms,
                r.clusters,
                r.list_p50_ms,
                r.list_p99_ms,
                r.bytes_per_face,
                r.rss_bytes_per_face,
                r.bcubed_f1,
                r.pair_precision,
                r.pair_recall
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_count_bcubed_and_pairs() {
        let truth = [0, 0, 1, 1];
        let same: Vec<String> = ["a", "a", "b", "b"].iter().map(|s| s.to_string()).collect();
        assert_eq!(scores(&truth, &same), (1.0, 1.0, 1.0));
        let one: Vec<String> = ["a"; 4].iter().map(|s| s.to_string()).collect();
        let (_, p, r) = scores(&truth, &one);
        assert!((p - 2.0 / 6.0).abs() < 1e-12 && r == 1.0);
    }
}
