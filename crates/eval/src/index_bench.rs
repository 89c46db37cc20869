//! `visage bench-gallery`: the 1:N index on a realistic gallery
//! ([`super::synthetic`], real faces optionally mixed in), against exact f32
//! search on the same gallery. Per size: recall@1 on genuine probes (the
//! same top face as exact search), decision agreement (the same known /
//! unknown answer at the 1:N threshold, over every probe), search latency
//! one probe at a time, build, save and reopen times, bytes per face.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::gallery_bench::percentile;
use super::synthetic::{BETWEEN, Maker, SPREAD, Shape, Synthetic, WITHIN, generate};
use visage_service::gallery::{AnnIndex, ExactIndex, Hit, Index, IndexConfig, IndexKind};

/// What `visage bench-gallery` measures.
#[derive(Debug, Clone)]
pub struct IndexBenchOptions {
    pub sizes: Vec<usize>,
    /// Drawn probes per size (half genuine, half strangers), besides the real ones.
    pub probes: usize,
    /// The fitted shape (`visage eval shape`).
    pub shape: PathBuf,
    /// Real faces by person, mixed in (enrolled photo sets; none by default).
    pub real: Vec<Vec<Vec<f32>>>,
    /// The 1:N threshold decisions are compared at.
    pub threshold: f32,
    /// The embedder's reference scores: decisions are compared again at the
    /// threshold `--identify-fpir 1e-2` gives for each size.
    pub reference: Option<visage_service::calibration::ScoreModel>,
    pub index: IndexConfig,
    /// Folder for the saved graph (default: the system temp folder).
    pub dir: Option<PathBuf>,
    pub json: bool,
}

/// One size's figures (the names are read by scripts: keep them).
#[derive(Debug, Serialize)]
pub struct IndexRow {
    pub size: usize,
    /// Resident memory the index under test added when it was made
    /// (exact-i8) or reopened (ann), per face; None for exact f32 (the
    /// gallery's own rows).
    pub rss_bytes_per_face: Option<f64>,
    /// The index measured (auto resolved).
    pub index: &'static str,
    pub recall_at_1: f64,
    /// recall@1 of the real genuine probes alone (None without real faces).
    pub recall_at_1_real: Option<f64>,
    pub decision_agreement: f64,
    /// Where the top face is exact search's: how far its similarity is from
    /// the exact one (codes' rounding), mean and largest.
    pub similarity_error_mean: f64,
    /// The threshold `--identify-fpir 1e-2` gives at this size (from the
    /// embedder's reference), and the agreement there.
    pub fpir_threshold: Option<f64>,
    pub decision_agreement_at_fpir: Option<f64>,
    pub similarity_error_max: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Building the index from the gallery's f32 embeddings (both cores).
    pub build_seconds: f64,
    /// Reopening the saved graph (ann); an exact index has nothing saved and
    /// is built again: its build time.
    pub load_seconds: f64,
    pub save_seconds: Option<f64>,
    /// The index's own memory (codes or rows, graph, slot bookkeeping) per
    /// face; the service adds its id maps (about 130 B a face at one face a
    /// person, `visage bench-load`).
    pub bytes_per_face: f64,
    /// Exact f32 search on the same gallery, for the same probes.
    pub exact_p50_ms: f64,
    pub exact_p99_ms: f64,
    pub genuine_probes: usize,
    pub probes: usize,
    pub threads: usize,
    pub cpu: String,
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Each probe's top face (as a row of the gallery) and its similarity, with
/// the search times (one probe at a time, after a warm-up).
fn answers(index: &dyn Index, g: &Synthetic) -> (Vec<Option<Hit>>, Vec<Duration>) {
    for p in g.probes.iter().take(20) {
        index.search(&p.vector, 1);
    }
    let mut times = Vec::with_capacity(g.probes.len());
    let found = g
        .probes
        .iter()
        .map(|p| {
            let t = Instant::now();
            let hit = index.search(&p.vector, 1).into_iter().next();
            times.push(t.elapsed());
            hit
        })
        .collect();
    times.sort();
    (found, times)
}

fn measure(o: &IndexBenchOptions, maker: &Maker, size: usize) -> Result<IndexRow> {
    let threads = o.index.ann.build_threads;
    let real = o.real.iter().filter(|f| f.len() > 1).count();
    let mut g = generate(maker, size.saturating_sub(real), o.probes, threads, real);
    g.mix_real(&o.real);
    if !o.json {
        let ((gm, gs), (im, is)) = g.cosines();
        eprintln!(
            "{} faces ({} real), {} probes ({} real genuine, {} real strangers): same-person cosine {gm:.3} sd \
             {gs:.3}, different-person {im:.3} sd {is:.3}",
            g.len(),
            g.real.0,
            g.probes.len(),
            g.real.1,
            g.real.2
        );
    }
    // The gallery's rows move into the exact index (no copy: 10 GB at 10M).
    let start = Instant::now();
    let exact = ExactIndex::from_rows(g.dim, std::mem::take(&mut g.rows), &g.person);
    let exact_build = start.elapsed().as_secs_f64();
    let (truth, exact_times) = answers(&exact, &g);
    let kind = o.index.kind.resolve(g.len(), o.index.auto_exact_max);
    let start = Instant::now();
    let mut rss_added = None;
    let (index, save_seconds, load_seconds): (Box<dyn Index>, Option<f64>, f64) = match kind {
        IndexKind::Exact | IndexKind::Auto => (Box::new(exact), None, exact_build),
        IndexKind::ExactI8 => {
            let before = super::gallery_bench::rss_bytes();
            let q = exact.quantized_copy();
            rss_added = Some(super::gallery_bench::rss_bytes().saturating_sub(before));
            drop(exact);
            let secs = start.elapsed().as_secs_f64();
            (Box::new(q), None, secs)
        }
        IndexKind::Ann => {
            let ann = AnnIndex::build(&exact.quantized_copy(), o.index.ann)?;
            drop(exact);
            let dir = o.dir.clone().unwrap_or_else(std::env::temp_dir);
            let path = dir.join(format!("visage-bench-{}.usearch", std::process::id()));
            let t = Instant::now();
            ann.save(&path)?;
            let save = t.elapsed().as_secs_f64();
            let members = ann.members();
            let (dim, scale) = (ann.dim(), ann.scale());
            drop(ann);
            let (t, before) = (Instant::now(), super::gallery_bench::rss_bytes());
            let opened = AnnIndex::open(&path, dim, scale, o.index.ann, &members);
            let load = t.elapsed().as_secs_f64();
            rss_added = Some(super::gallery_bench::rss_bytes().saturating_sub(before));
            if let (Ok(a), true) = (&opened, std::env::var_os("VISAGE_BENCH_DEBUG").is_some()) {
                eprintln!("usearch memory: {}", a.memory_report());
            }
            let _ = std::fs::remove_file(&path);
            (Box::new(opened?), Some(save), load)
        }
    };
    let build_seconds = match kind {
        IndexKind::Ann => start.elapsed().as_secs_f64() - load_seconds - save_seconds.unwrap_or(0.0),
        _ => load_seconds,
    };
    let (found, times) = answers(index.as_ref(), &g);
    let genuine: Vec<usize> = (0..g.probes.len()).filter(|&i| g.probes[i].person.is_some()).collect();
    // Identify names persons: recall is of the person exact search names.
    let same_person = |i: usize| found[i].map(|h| h.person) == truth[i].map(|h| h.person);
    let same_face = |i: usize| found[i].map(|h| h.face) == truth[i].map(|h| h.face);
    let recall = |real: bool| -> Option<f64> {
        let of: Vec<&usize> = genuine.iter().filter(|&&i| !real || g.probes[i].real).collect();
        (!of.is_empty()).then(|| of.iter().filter(|&&&i| same_person(i)).count() as f64 / of.len() as f64)
    };
    let agreement = |t: f32| {
        let known = |h: Option<Hit>| h.is_some_and(|h| h.similarity >= t);
        (0..g.probes.len()).filter(|&i| known(found[i]) == known(truth[i])).count() as f64
            / g.probes.len().max(1) as f64
    };
    let known = |h: Option<Hit>| h.is_some_and(|h| h.similarity >= o.threshold);
    let fpir_threshold = o.reference.as_ref().and_then(|r| {
        let estimate = visage_service::calibration::Estimate { reference: Some(r.clone()), gallery: None };
        estimate.threshold_for_fpir(1e-2, g.len())
    });
    if std::env::var_os("VISAGE_BENCH_DEBUG").is_some() {
        for i in (0..g.probes.len()).filter(|&i| known(found[i]) != known(truth[i])) {
            eprintln!("probe {i} ({:?}): exact {:?}, index {:?}", g.probes[i].person, truth[i], found[i]);
        }
    }
    let errors: Vec<f64> = (0..g.probes.len())
        .filter(|&i| same_face(i))
        .filter_map(|i| Some(f64::from((found[i]?.similarity - truth[i]?.similarity).abs())))
        .collect();
    Ok(IndexRow {
        rss_bytes_per_face: rss_added.map(|b| b as f64 / g.len().max(1) as f64),
        size: g.len(),
        index: index.kind(),
        recall_at_1: recall(false).unwrap_or(0.0),
        recall_at_1_real: recall(true).filter(|_| g.real.1 > 0),
        decision_agreement: agreement(o.threshold),
        fpir_threshold,
        decision_agreement_at_fpir: fpir_threshold.map(|t| agreement(t as f32)),
        similarity_error_mean: errors.iter().sum::<f64>() / errors.len().max(1) as f64,
        similarity_error_max: errors.iter().copied().fold(0.0, f64::max),
        p50_ms: percentile(&times, 0.5),
        p99_ms: percentile(&times, 0.99),
        build_seconds,
        load_seconds,
        save_seconds,
        bytes_per_face: index.memory_bytes() as f64 / g.len().max(1) as f64,
        exact_p50_ms: percentile(&exact_times, 0.5),
        exact_p99_ms: percentile(&exact_times, 0.99),
        genuine_probes: genuine.len(),
        probes: g.probes.len(),
        threads,
        cpu: cpu_model(),
    })
}

pub fn run(o: &IndexBenchOptions) -> Result<()> {
    let shape = Shape::load(&o.shape).with_context(|| format!("the gallery shape ({})", o.shape.display()))?;
    let maker = shape.maker(BETWEEN, WITHIN, SPREAD);
    let mut rows = Vec::new();
    for &size in &o.sizes {
        let row = measure(o, &maker, size)?;
        if !o.json {
            println!(
                "{:>9} faces, {}: recall@1 {:.4}{}, decisions agree {:.4}{} (similarity error mean {:.4} max {:.4}), p50 {:.2} ms p99 {:.2} ms (exact f32 \
                 p50 {:.2} / p99 {:.2}), build {:.1} s, load {:.2} s, {:.0} B/face  [{}; {} threads]",
                row.size,
                row.index,
                row.recall_at_1,
                row.recall_at_1_real.map_or(String::new(), |r| format!(" (real {r:.4})")),
                row.decision_agreement,
                match (row.fpir_threshold, row.decision_agreement_at_fpir) {
                    (Some(t), Some(a)) => format!(" at {:.3}, {a:.4} at {t:.4} (FPIR 1 %)", o.threshold),
                    _ => String::new(),
                },
                row.similarity_error_mean,
                row.similarity_error_max,
                row.p50_ms,
                row.p99_ms,
                row.exact_p50_ms,
                row.exact_p99_ms,
                row.build_seconds,
                row.load_seconds,
                row.bytes_per_face,
                row.cpu,
                row.threads
            );
        }
        rows.push(row);
    }
    if o.json {
        println!("{}", serde_json::to_string(&rows)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_service::gallery::AnnParams;

    fn options(kind: IndexKind) -> IndexBenchOptions {
        IndexBenchOptions {
            sizes: vec![3000],
            probes: 100,
            shape: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/reference/sface+dlib.shape"),
            real: Vec::new(),
            threshold: 0.735,
            reference: None,
            index: IndexConfig {
                kind,
                ann: AnnParams { connectivity: 16, expansion_add: 64, expansion_search: 64, build_threads: 2 },
                auto_exact_max: 1000,
            },
            dir: None,
            json: true,
        }
    }

    #[test]
    fn a_row_names_the_figures_scripts_read_and_measures_against_exact_search() {
        let shape = Shape::load(&options(IndexKind::Exact).shape).unwrap();
        let maker = shape.maker(BETWEEN, WITHIN, SPREAD);
        for (kind, name) in [(IndexKind::ExactI8, "exact-i8"), (IndexKind::Auto, "ann")] {
            let row = measure(&options(kind), &maker, 3000).unwrap();
            assert_eq!((row.size, row.index, row.probes, row.genuine_probes), (3000, name, 100, 50));
            assert!(row.recall_at_1 >= 0.9 && row.decision_agreement >= 0.9, "{row:?}");
            assert!(row.similarity_error_max < 0.01);
            if kind == IndexKind::ExactI8 {
                // 256 bytes of codes, a norm and the slot bookkeeping.
                assert!(row.bytes_per_face < 320.0, "{row:?}");
            }
            let json = serde_json::to_value(&row).unwrap();
            for field in [
                "recall_at_1",
                "decision_agreement",
                "p50_ms",
                "p99_ms",
                "build_seconds",
                "load_seconds",
                "bytes_per_face",
            ] {
                assert!(json[field].as_f64().is_some_and(|v| v >= 0.0), "{field} in {json}");
            }
        }
    }
}
