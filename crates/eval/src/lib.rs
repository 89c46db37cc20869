//! Accuracy evaluation on labelled pairs of photos (`visage eval pairs`), and
//! the per-stage latency benchmark (`visage bench`), and the other
//! measurements the `visage eval` and `bench-*` commands run.
// Measurement code runs on operators' data: no panics outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
pub mod ambiguity;
pub mod bench;
pub mod calibrate;
pub mod cluster_bench;
pub mod detections;
pub mod gallery_bench;
pub mod identify;
pub mod index_bench;
pub mod metrics;
pub mod one_shot;
pub mod pairs;
pub mod synthetic;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use parking_lot::Mutex;
use serde::Serialize;

use metrics::Scored;
use visage_service::calibration::EmbedderPolicy;
use visage_service::domain::FaceChoice;
use visage_service::domain::similarity::dot;
use visage_service::vision::{Pipeline, PipelineConfig};

/// The models a measurement runs: their folder and the pipeline's settings.
#[derive(Debug, Clone)]
pub struct Models {
    pub dir: PathBuf,
    pub config: PipelineConfig,
}

impl Models {
    pub fn load(&self) -> Result<Pipeline> {
        Pipeline::load(&self.dir, self.config.clone())
    }

    /// The decision policy of `p`'s embedder (thresholds, margin, reference).
    pub fn policy(&self, p: &Pipeline) -> Result<EmbedderPolicy> {
        EmbedderPolicy::of_model(&p.manifest, p.embedder.id(), &self.dir)
    }
}

/// `visage eval pairs`: LFW's protocol on a pairs file.
#[derive(Debug, Clone)]
pub struct PairsOptions {
    pub pairs: PathBuf,
    pub root: PathBuf,
    /// Folds for a CSV file (an LFW file names its own).
    pub folds: usize,
    /// Threads embedding images (None: all cores).
    pub threads: Option<usize>,
    pub json: bool,
    /// Where every pair's similarity is written as CSV, if anywhere.
    pub scores: Option<PathBuf>,
    /// Which face of a photo with several is compared.
    pub face: FaceChoice,
    /// Embed each face from the crop `--keep-crops` keeps of it, not the photo.
    pub via_kept_crop: bool,
}

/// What `eval pairs` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub pairs: usize,
    pub matched: usize,
    pub mismatched: usize,
    pub images: usize,
    /// Images where no face was found (their pairs score -1: "different").
    pub no_face: usize,
    pub folds: usize,
    pub accuracy_mean: f64,
    pub accuracy_std: f64,
    /// Mean of the thresholds chosen on the training folds.
    pub threshold_kfold_mean: f32,
    pub threshold_default: f32,
    pub accuracy_at_default: f64,
    pub tar_at_far_0_001: f64,
    pub threshold_at_far_0_001: f32,
    pub tar_at_far_0_01: f64,
    pub auc: f64,
    pub eer: f64,
    pub model: String,
    pub flip: bool,
    pub seconds: f64,
}

/// `visage eval pairs`.
pub fn pairs_command(o: PairsOptions, models: &Models) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&o.pairs).with_context(|| format!("cannot read {}", o.pairs.display()))?;
    let list = pairs::parse(&text, &o.root, o.folds)?;
    let p = models.load()?;
    let threads = o.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let verify = models.policy(&p)?.verify;
    let (report, scored) = evaluate(&p, &list, threads, o.face, o.via_kept_crop, verify)?;
    if let Some(path) = o.scores {
        let mut csv = String::from("img_a,img_b,same,similarity\n");
        for (pair, s) in list.pairs.iter().zip(&scored) {
            csv += &format!("{},{},{},{:.6}\n", pair.a.display(), pair.b.display(), u8::from(pair.same), s.score);
        }
        std::fs::write(&path, csv).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if o.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// `visage eval identify`: FPIR and DIR per threshold from a clusters file.
pub fn identify_command(clusters: &Path, root: &Path, json: bool, models: &Models) -> Result<ExitCode> {
    let text = std::fs::read_to_string(clusters).with_context(|| format!("cannot read {}", clusters.display()))?;
    let groups = identify::parse_clusters(&text, root)?;
    let p = models.load()?;
    let all: Vec<&PathBuf> = groups.iter().flatten().collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut flat = analyze_all(&p, &all, threads, FaceChoice::Central, None, false)?.into_iter();
    let embeddings: Vec<Vec<Option<Vec<f32>>>> =
        groups.iter().map(|g| g.iter().map(|_| flat.next().flatten()).collect()).collect();
    let thresholds: Vec<f32> = (30..=70).map(|t| t as f32 / 100.0).collect();
    let c = identify::calibrate(&embeddings, &thresholds);
    if json {
        println!("{}", serde_json::to_string(&c)?);
    } else {
        println!(
            "{} persons, {} genuine probes, {} stranger probes; lowest genuine best match {:.3}, highest stranger {:.3}",
            c.persons, c.genuine_probes, c.stranger_probes, c.genuine_min, c.stranger_max
        );
        println!("{:>9} {:>8} {:>8}", "threshold", "DIR", "FPIR");
        for r in c.rows.iter().step_by(2) {
            println!("{:>9.2} {:>7.1}% {:>7.1}%", r.threshold, 100.0 * r.dir, 100.0 * r.fpir);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `visage eval one-shot`.
#[derive(Debug, Clone)]
pub struct OneShotOptions {
    /// Folder of `<Name>/<Name>_NNNN.jpg` photos.
    pub root: PathBuf,
    /// Only the persons this pairs file names.
    pub pairs: Option<PathBuf>,
    pub persons: usize,
    pub strangers: usize,
    /// The identification threshold (None: the embedder's).
    pub threshold: Option<f32>,
    pub json: bool,
}

/// `visage eval one-shot`.
pub fn one_shot_command(o: OneShotOptions, models: &Models) -> Result<ExitCode> {
    let OneShotOptions { root, pairs, persons, strangers, threshold, json } = o;
    let names = persons_named(&root, pairs.as_deref())?;
    let proto = one_shot::protocol(&root, names, persons, strangers)?;
    let p = models.load()?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let svc = visage_service::service::ServiceConfig::default();
    let enrolled: Vec<&PathBuf> = proto.persons.iter().map(|x| &x.0).collect();
    let probes: Vec<&PathBuf> = proto.persons.iter().map(|x| &x.1).collect();
    let gate = Some((svc.min_face_size, svc.min_sharpness));
    let enrolled = analyze_all(&p, &enrolled, threads, FaceChoice::Largest, gate, false)?;
    let probes = analyze_all(&p, &probes, threads, FaceChoice::Largest, None, false)?;
    let strangers =
        analyze_all(&p, &proto.strangers.iter().collect::<Vec<_>>(), threads, FaceChoice::Largest, None, false)?;
    let default = threshold.unwrap_or(models.policy(&p)?.identify);
    let mut thresholds: Vec<f32> = (40..=198).map(|t| t as f32 / 200.0).collect();
    thresholds.push(default);
    let r = one_shot::score(&enrolled, &probes, &strangers, &thresholds);
    // What the reference scores expect strangers to meet: 1 - (1 - FAR)^faces.
    let id = p.embedder.id();
    let reference =
        visage_service::calibration::Reference::load(&models.dir, &id.name, &id.to_string())?.map(|r| r.scores());
    let gallery = r.persons - r.not_enrollable;
    let expected = |t: f32| reference.as_ref().map(|m| visage_service::calibration::fpir(m.far(f64::from(t)), gallery));
    if json {
        let expected: Vec<Option<f64>> = r.outcomes.iter().map(|o| expected(o.threshold)).collect();
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({
                "model": p.embedder.id().to_string(), "threshold": default, "report": r,
                "expected_strangers_accepted": expected
            }))?
        );
    } else {
        println!(
            "{} persons ({} not enrollable), {} strangers, {} probes without a face; model {}",
            r.persons,
            r.not_enrollable,
            r.strangers,
            r.probes_without_face,
            p.embedder.id()
        );
        println!("{:>9} {:>7} {:>7} {:>9} {:>9}", "threshold", "found", "wrong", "strangers", "expected");
        for o in r.outcomes.iter().filter(|o| (o.threshold * 200.0).round() as i32 % 2 == 0 || o.threshold == default) {
            let mark = if o.threshold == default && std::ptr::eq(o, r.outcomes.last().unwrap_or(o)) {
                "  <- default"
            } else {
                ""
            };
            let e = expected(o.threshold).map_or("-".into(), |e| format!("{:.2}%", 100.0 * e));
            println!(
                "{:>9.3} {:>6.2}% {:>6.2}% {:>8.2}% {e:>9}{mark}",
                o.threshold,
                100.0 * o.found,
                100.0 * o.wrong,
                100.0 * o.strangers_accepted
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `visage eval detections`: which photos, down to which score.
#[derive(Debug, Clone)]
pub struct DetectionsOptions {
    /// The photos a pairs file names...
    pub pairs: Option<PathBuf>,
    /// ...or every image below this folder.
    pub dir: Option<PathBuf>,
    /// What the pairs file's (and the printed) paths are relative to.
    pub root: Option<PathBuf>,
    /// The lowest score kept.
    pub floor: f32,
    /// Where the lines go (None: standard output).
    pub out: Option<PathBuf>,
}

/// `visage eval detections`.
pub fn detections_command(o: DetectionsOptions, models: &Models) -> Result<ExitCode> {
    let DetectionsOptions { pairs, dir, root, floor, out } = o;
    let root = root.or_else(|| dir.clone()).unwrap_or_default();
    let images = match (&pairs, &dir) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
            detections::images_of(&pairs::parse(&text, &root, 10)?)
        }
        (None, Some(d)) => visage_service::vision::files::image_files_below(d)?,
        (None, None) => anyhow::bail!("give --pairs or --dir"),
    };
    let mut models = models.clone();
    models.config.detector.score_threshold = floor;
    models.config.detector.best_score_threshold = floor;
    let p = models.load()?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    match out {
        Some(path) => {
            let mut f = std::io::BufWriter::new(
                std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?,
            );
            detections::dump(&p, &images, &root, threads, &mut f)?;
            std::io::Write::flush(&mut f)?;
        }
        None => detections::dump(&p, &images, &root, threads, &mut std::io::stdout().lock())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Embeds each distinct image once (the face `select` picks), on `threads`
/// threads, and scores every pair.
/// Returns the report and every pair's score, in the list's order.
pub fn evaluate(
    p: &Pipeline,
    list: &pairs::PairList,
    threads: usize,
    select: FaceChoice,
    via_kept_crop: bool,
    threshold_default: f32,
) -> Result<(Report, Vec<Scored>)> {
    let start = std::time::Instant::now();
    let images: Vec<&PathBuf> =
        list.pairs.iter().flat_map(|x| [&x.a, &x.b]).collect::<BTreeSet<_>>().into_iter().collect();
    let embeddings = analyze_all(p, &images, threads.max(1), select, None, via_kept_crop)?;
    let lookup: BTreeMap<&Path, &Option<Vec<f32>>> =
        images.iter().map(|x| x.as_path()).zip(embeddings.iter()).collect();
    let no_face = embeddings.iter().filter(|e| e.is_none()).count();
    let scored: Vec<Scored> = list
        .pairs
        .iter()
        .map(|x| {
            let score = match (lookup[x.a.as_path()], lookup[x.b.as_path()]) {
                (Some(a), Some(b)) => dot(a, b),
                _ => -1.0,
            };
            Scored { score, same: x.same, fold: x.fold }
        })
        .collect();
    let folds = metrics::kfold_accuracy(&scored, list.folds);
    let accs: Vec<f64> = folds.iter().map(|f| f.0).collect();
    let (accuracy_mean, accuracy_std) = metrics::mean_std(&accs);
    let (tar3, thr3) = metrics::tar_at_far(&scored, 0.001);
    let (tar2, _) = metrics::tar_at_far(&scored, 0.01);
    let report = Report {
        pairs: scored.len(),
        matched: scored.iter().filter(|s| s.same).count(),
        mismatched: scored.iter().filter(|s| !s.same).count(),
        images: images.len(),
        no_face,
        folds: folds.len(),
        accuracy_mean,
        accuracy_std,
        threshold_kfold_mean: folds.iter().map(|f| f.1).sum::<f32>() / folds.len().max(1) as f32,
        threshold_default,
        accuracy_at_default: metrics::accuracy_at(&scored, threshold_default),
        tar_at_far_0_001: tar3,
        threshold_at_far_0_001: thr3,
        tar_at_far_0_01: tar2,
        auc: metrics::roc_auc(&scored),
        eer: metrics::eer(&scored),
        model: p.embedder.id().to_string(),
        flip: p.config.flip,
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok((report, scored))
}

/// The persons a pairs file names (LFW format), or without one every
/// folder under `root`, in name order.
pub(crate) fn persons_named(root: &Path, pairs_file: Option<&Path>) -> Result<BTreeSet<String>> {
    match pairs_file {
        Some(file) => {
            let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
            let list = pairs::parse(&text, root, 10)?;
            Ok(list.pairs.iter().flat_map(|p| [&p.a, &p.b]).filter_map(|x| person_of(x)).collect())
        }
        None => Ok(std::fs::read_dir(root)
            .with_context(|| format!("cannot list {}", root.display()))?
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()),
    }
}

/// The person an LFW photo path shows (its folder's name).
pub(crate) fn person_of(path: &Path) -> Option<String> {
    path.parent()?.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// The embedding of each image's selected face (None when no face is found,
/// the image cannot be decoded, or the face fails `gate`: smallest face size
/// and sharpness, as enrollment checks them); an unreadable file fails the
/// whole run.
/// The selected face of a photo, embedded from the photo, or (with
/// `via_kept_crop`) from the crop `--keep-crops` would keep of it, after a
/// PNG round trip, as `visage reembed` embeds it.
fn analyze_one(
    p: &Pipeline,
    bytes: &[u8],
    select: FaceChoice,
    via_kept_crop: bool,
) -> Result<Vec<visage_service::vision::Face>> {
    if !via_kept_crop {
        return Ok(p.analyze_bytes(bytes, select, true)?.0);
    }
    let img = p.decode(bytes)?;
    let mut t = visage_service::vision::Timings::default();
    let Some(face) = p.analyze(&img, select, false, &mut t)?.into_iter().next() else { return Ok(Vec::new()) };
    let (png, at) =
        visage_service::vision::kept::encode(&img, &face.detection.landmarks).context("degenerate landmarks")?;
    let crop = p.decode(&png)?;
    let mut again = p.describe(&crop, visage_service::vision::kept::detection(at), true, &mut t)?;
    // The gates judge the face as found in the photo.
    again.quality = face.quality;
    Ok(vec![again])
}

pub(crate) fn analyze_all(
    p: &Pipeline,
    images: &[&PathBuf],
    threads: usize,
    select: FaceChoice,
    gate: Option<(f32, f32)>,
    via_kept_crop: bool,
) -> Result<Vec<Option<Vec<f32>>>> {
    let passes = |q: &visage_service::domain::Quality| {
        gate.is_none_or(|(size, sharp)| q.face_size >= size && q.sharpness >= sharp)
    };
    let bar = indicatif::ProgressBar::new(images.len() as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} embedding {pos}/{len} images [{bar:30}] {per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Result<Option<Vec<f32>>>>> = Mutex::new((0..images.len()).map(|_| Ok(None)).collect());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = images.get(i) else { break };
                    let emb = match std::fs::read(path) {
                        Ok(bytes) => match analyze_one(p, &bytes, select, via_kept_crop) {
                            Ok(faces) => Ok(faces
                                .into_iter()
                                .next()
                                .filter(|f| passes(&f.quality))
                                .and_then(|f| f.embedding)
                                .map(|e| e.values)),
                            Err(e) => {
                                bar.suspend(|| eprintln!("{}: {e}", path.display()));
                                Ok(None)
                            }
                        },
                        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
                    };
                    results.lock()[i] = emb;
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    results.into_inner().into_iter().collect()
}

fn print_table(r: &Report) {
    let pct = |x: f64| format!("{:.2}%", 100.0 * x);
    let folds = format!("{}-fold accuracy", r.folds);
    let rows = [
        ("pairs (matched / mismatched)", format!("{} ({} / {})", r.pairs, r.matched, r.mismatched)),
        ("images (no face found)", format!("{} ({})", r.images, r.no_face)),
        (folds.as_str(), format!("{} ± {}", pct(r.accuracy_mean), pct(r.accuracy_std))),
        ("  mean k-fold threshold", format!("{:.3}", r.threshold_kfold_mean)),
        (
            "accuracy at default threshold",
            format!("{} (cosine ≥ {:.3})", pct(r.accuracy_at_default), r.threshold_default),
        ),
        ("TAR @ FAR=0.1%", format!("{} (cosine > {:.3})", pct(r.tar_at_far_0_001), r.threshold_at_far_0_001)),
        ("TAR @ FAR=1%", pct(r.tar_at_far_0_01)),
        ("ROC AUC", format!("{:.4}", r.auc)),
        ("EER", pct(r.eer)),
        ("model", format!("{}{}", r.model, if r.flip { " (+flip)" } else { "" })),
        ("time", format!("{:.1} s", r.seconds)),
    ];
    let w = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("{k:<w$}  {v}");
    }
}

/// The embeddings of a database by person (one model: `model`, else the one
/// most faces have), for fitting and mixing in real faces.
pub async fn embeddings_by_person(
    db: &std::path::Path,
    model: Option<&str>,
) -> anyhow::Result<(String, Vec<Vec<Vec<f32>>>)> {
    use futures_util::TryStreamExt as _;
    let store = visage_service::store::Store::open(db).await?;
    let model = match model {
        Some(m) => m.to_string(),
        None => {
            let counts = store.model_counts().await?;
            let top = counts.into_iter().max_by_key(|c| c.own + c.beside);
            top.map(|c| c.model).ok_or_else(|| anyhow::anyhow!("{} holds no faces", db.display()))?
        }
    };
    let mut by_person: std::collections::BTreeMap<String, Vec<Vec<f32>>> = Default::default();
    let mut rows = store.embeddings(&model);
    while let Some(e) = rows.try_next().await? {
        if e.model == model {
            by_person.entry(e.person_id).or_default().push(e.values);
        }
    }
    drop(rows);
    store.close().await;
    Ok((model, by_person.into_values().collect()))
}
