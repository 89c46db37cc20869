//! `visage bench-load`: start-up at scale. Synthetic unit embeddings are
//! inserted through the store (one person and one face each), the gallery is
//! loaded from the store as at start-up (temporary SQLite files, or the
//! database `--db` names), and probes are searched one at a time. (The index
//! itself on a realistic gallery: `visage bench-gallery`, `index_bench`.)
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;

use visage_service::domain::similarity::l2_normalize;
use visage_service::gallery::{IndexConfig, IndexKind};
use visage_service::sealing::{DataKey, DataKeys};
use visage_service::service::load_gallery;
use visage_service::store::Store;

/// What `visage bench-load` measures.
#[derive(Debug, Clone)]
pub struct GalleryBenchOptions {
    /// Gallery sizes to measure.
    pub sizes: Vec<usize>,
    /// Probes searched per size.
    pub queries: usize,
    pub dim: usize,
    pub top_k: usize,
    /// Folder for the temporary databases (None: the system temp folder).
    pub dir: Option<PathBuf>,
    /// An empty database to measure in instead of temporary SQLite files
    /// (a PostgreSQL database, say); then only one size.
    pub db: Option<PathBuf>,
    pub json: bool,
    /// The index measured; for any but exact f32, recall@1 against exact f32 search is reported.
    pub index: IndexConfig,
    /// Each size measured in clear, then sealed with a fresh data key
    /// (encryption at rest), and the ratios printed.
    pub sealed: bool,
}

#[derive(Debug, Serialize)]
pub struct GalleryRow {
    pub size: usize,
    pub insert_seconds: f64,
    pub startup_seconds: f64,
    pub search_p50_ms: f64,
    pub search_p99_ms: f64,
    pub index_bytes_per_embedding: f64,
    pub rss_bytes_per_embedding: f64,
    pub self_recall_at_1: f64,
    /// Probes near an enrolled embedding (cosine ~0.64, like another photo of
    /// the person) whose top-1 face equals exact search's.
    pub recall_at_1_vs_exact: f64,
    pub index: IndexKind,
    /// Embeddings sealed with a data key.
    pub sealed: bool,
}

/// Deterministic pseudo-random unit vectors.
struct Vectors(SmallRng);

impl Vectors {
    fn new(seed: u64) -> Self {
        Self(SmallRng::seed_from_u64(seed))
    }

    fn next(&mut self, dim: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dim).map(|_| self.0.random::<f32>() - 0.5).collect();
        l2_normalize(&mut v);
        v
    }
}

/// Resident set size of this process, from /proc (0 where unavailable).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The `p` quantile of sorted durations, in milliseconds.
pub(super) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

const MODEL: &str = "synthetic@sha256:0";

/// A fresh random data key.
fn random_key() -> Result<DataKeys> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no random numbers: {e}"))?;
    Ok(DataKeys::new(DataKey::new(&key), vec![]))
}

pub async fn run(args: GalleryBenchOptions) -> Result<ExitCode> {
    if let Some(db) = &args.db {
        anyhow::ensure!(args.sizes.len() == 1, "with --db, give one size (--sizes N): the database is not emptied");
        let row = measure(&args, args.sizes[0], db, &DataKeys::none()).await?;
        match args.json {
            true => println!("{}", serde_json::to_string(&[row])?),
            false => print_row(&row),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let dir =
        args.dir.clone().unwrap_or_else(std::env::temp_dir).join(format!("visage-gallery-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut rows = Vec::new();
    let ways = if args.sealed { vec![DataKeys::none(), random_key()?] } else { vec![DataKeys::none()] };
    for &size in &args.sizes {
        for keys in &ways {
            let db = dir.join(format!("g{size}.db"));
            let _ = std::fs::remove_file(&db);
            let row = measure(&args, size, &db, keys).await?;
            let _ = std::fs::remove_file(&db);
            if !args.json {
                print_row(&row);
            }
            rows.push(row);
        }
        if let [.., clear, sealed] = rows.as_slice()
            && sealed.sealed
            && !args.json
        {
            println!(
                "{size:>9} embeddings, sealed / clear: insert {:.3}, start-up load {:.3}",
                sealed.insert_seconds / clear.insert_seconds,
                sealed.startup_seconds / clear.startup_seconds
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if args.json {
        println!("{}", serde_json::to_string(&rows)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_row(row: &GalleryRow) {
    println!(
        "{:>9} embeddings, {:?}{}: insert {:>6.1} s, start-up load {:>6.2} s, search p50 {:>7.2} ms p99 {:>7.2} \
         ms, {:>4.0} B/embedding in the index ({:>4.0} B RSS), self-recall@1 {:.3}, recall@1 vs exact {:.3}",
        row.size,
        row.index,
        if row.sealed { ", sealed" } else { "" },
        row.insert_seconds,
        row.startup_seconds,
        row.search_p50_ms,
        row.search_p99_ms,
        row.index_bytes_per_embedding,
        row.rss_bytes_per_embedding,
        row.self_recall_at_1,
        row.recall_at_1_vs_exact
    );
}

/// One gallery size: inserted through the store into `db`, loaded as at
/// start-up, searched with members, near-members and strangers.
async fn measure(args: &GalleryBenchOptions, size: usize, db: &std::path::Path, keys: &DataKeys) -> Result<GalleryRow> {
    let mut vectors = Vectors::new(size as u64);
    let items: Vec<(String, Vec<f32>)> = (0..size).map(|i| (format!("person {i}"), vectors.next(args.dim))).collect();
    let probes: Vec<Vec<f32>> =
        items.iter().step_by((size / args.queries.max(1)).max(1)).map(|(_, v)| v.clone()).collect();
    let store = Store::open_with(db, keys.clone()).await?;
    let start = Instant::now();
    store.bulk_enroll(&items, MODEL).await?;
    let insert_seconds = start.elapsed().as_secs_f64();
    store.close().await;
    drop(items);
    let rss_before = rss_bytes();
    let start = Instant::now();
    let store = Store::open_with(db, keys.clone()).await?;
    let index_dir = db.with_extension("index");
    let gallery = load_gallery(&store, MODEL, args.dim, args.index, Some(&index_dir)).await?.gallery;
    let startup_seconds = start.elapsed().as_secs_f64();
    let rss_after = rss_bytes();
    // Another photo of an enrolled person: the embedding plus noise.
    let near: Vec<Vec<f32>> = probes
        .iter()
        .take(args.queries)
        .map(|v| {
            let noise = vectors.next(args.dim);
            let mut q: Vec<f32> = v.iter().zip(&noise).map(|(a, b)| a + 1.2 * b).collect();
            l2_normalize(&mut q);
            q
        })
        .collect();
    let recall_at_1_vs_exact = if args.index.kind == IndexKind::Exact {
        1.0
    } else {
        let near_results: Vec<_> = near.iter().map(|q| gallery.search(q, 1)).collect();
        let exact = load_gallery(&store, MODEL, args.dim, IndexConfig::default(), None).await?.gallery;
        let same = near
            .iter()
            .zip(&near_results)
            .filter(|(q, r)| exact.search(q, 1).first().map(|c| &c.face_id) == r.first().map(|c| &c.face_id))
            .count();
        same as f64 / near.len().max(1) as f64
    };
    // Random probes (strangers) and gallery members (must find themselves).
    let mut times = Vec::with_capacity(args.queries * 2);
    let mut found = 0;
    for member in probes.iter().take(args.queries) {
        let stranger = vectors.next(args.dim);
        for (q, is_member) in [(&stranger, false), (member, true)] {
            let t = Instant::now();
            let r = gallery.search(q, args.top_k);
            times.push(t.elapsed());
            if is_member && r.first().is_some_and(|c| (c.similarity - 1.0).abs() < 1e-5) {
                found += 1;
            }
        }
    }
    times.sort();
    store.close().await;
    let _ = std::fs::remove_dir_all(&index_dir);
    Ok(GalleryRow {
        size,
        insert_seconds,
        startup_seconds,
        search_p50_ms: percentile(&times, 0.5),
        search_p99_ms: percentile(&times, 0.99),
        index_bytes_per_embedding: gallery.memory_bytes() as f64 / size as f64,
        rss_bytes_per_embedding: rss_after.saturating_sub(rss_before) as f64 / size as f64,
        self_recall_at_1: found as f64 / probes.len().min(args.queries).max(1) as f64,
        recall_at_1_vs_exact,
        index: args.index.kind,
        sealed: keys.is_on(),
    })
}
