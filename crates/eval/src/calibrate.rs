//! The reference score distributions shipped with each embedder (`visage
//! eval reference`), and how well they predict error rates on photos they
//! were not made from (`visage eval calibration`).
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;

use super::{Models, analyze_all, pairs, person_of};
use visage_service::calibration::{Estimate, Owned, Pairs, Reference, score_pairs};
use visage_service::domain::FaceChoice;

/// More than every pair of View 1's photos: references are never sampled.
const ALL_PAIRS: usize = 50_000_000;

/// The photos a pairs file names, embedded (central face) and labelled by person.
struct Photos {
    set: Owned,
    without_face: usize,
    /// The embedder's model id.
    model: String,
    /// The embedder's default 1:1 threshold.
    threshold: f32,
}

fn labelled_photos(models: &Models, pairs_file: &Path, root: &Path) -> Result<Photos> {
    let text = std::fs::read_to_string(pairs_file).with_context(|| format!("cannot read {}", pairs_file.display()))?;
    let list = pairs::parse(&text, root, 10)?;
    let photos: Vec<&PathBuf> =
        list.pairs.iter().flat_map(|p| [&p.a, &p.b]).collect::<BTreeSet<_>>().into_iter().collect();
    let p = models.load()?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let embeddings = analyze_all(&p, &photos, threads, FaceChoice::Central, None, false)?;
    let mut ids: BTreeMap<String, u32> = BTreeMap::new();
    let mut set = Owned { persons: Vec::new(), vectors: Vec::new() };
    let mut without = 0;
    for (path, e) in photos.iter().zip(embeddings) {
        let Some(e) = e else {
            without += 1;
            continue;
        };
        let next = ids.len() as u32;
        set.persons.push(*ids.entry(person_of(path).unwrap_or_default()).or_insert(next));
        set.vectors.push(e);
    }
    let threshold = models.policy(&p)?.verify;
    Ok(Photos { set, without_face: without, model: p.embedder.id().to_string(), threshold })
}

/// `visage eval reference`: every pair of the photos a pairs file names
/// (LFW View 1's DevTrain) into `out` (default `models/reference/<embedder>.json`).
pub fn reference_command(models: &Models, pairs_file: &Path, root: &Path, out: Option<PathBuf>) -> Result<ExitCode> {
    let Photos { set, without_face: without, model, .. } = labelled_photos(models, pairs_file, root)?;
    let Pairs { genuine, impostor, persons, .. } = score_pairs(&set, ALL_PAIRS, 0);
    let name = model.split('@').next().unwrap_or_default().to_string();
    let out = out.unwrap_or_else(|| Reference::path(&models.dir, &name));
    let file = |p: &Path| p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let previous = Reference::load(&models.dir, &name, &model).ok().flatten();
    let reference = Reference {
        source: format!(
            "LFW View 1 ({}): every pair of the {} photos it names (the central face), at most {} photos a person for same-person pairs",
            file(pairs_file),
            set.vectors.len() + without,
            visage_service::calibration::FACES_PER_PERSON
        ),
        command: format!("visage eval reference --pairs {} --root IMAGES --embedder {name}", file(pairs_file)),
        model,
        photos: set.vectors.len() + without,
        photos_without_face: without,
        persons,
        genuine,
        impostor,
        // The margin is chosen by `visage eval ambiguity`; a new reference keeps it.
        ambiguity_margin: previous.as_ref().and_then(|p| p.ambiguity_margin),
        ambiguity_source: previous.and_then(|p| p.ambiguity_source),
    };
    reference.save(&out)?;
    println!(
        "{}: {} photos ({} without a face), {} persons, {} same-person and {} different-person pairs",
        out.display(),
        reference.photos,
        without,
        persons,
        reference.genuine.total(),
        reference.impostor.total()
    );
    Ok(ExitCode::SUCCESS)
}

/// One row of the check: a threshold, what the reference expects there and
/// what the held-out photos show.
#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    /// The FAR asked for (None: the embedder's default threshold).
    pub target_far: Option<f64>,
    pub threshold: f64,
    pub expected_far: f64,
    pub observed_far: f64,
    /// Different-person pairs at or above the threshold.
    pub false_accepts: u64,
    pub expected_frr: f64,
    pub observed_frr: f64,
    pub false_rejects: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub model: String,
    pub reference: String,
    pub photos: usize,
    pub photos_without_face: usize,
    pub genuine_pairs: u64,
    pub impostor_pairs: u64,
    pub rows: Vec<CheckRow>,
}

/// `visage eval calibration`: the thresholds the reference gives for a
/// range of FAR targets, applied to every pair of other photos (LFW View 1's
/// DevTest): expected against observed FAR and FRR.
pub fn calibration_command(models: &Models, pairs_file: &Path, root: &Path, json: bool) -> Result<ExitCode> {
    let Photos { set, without_face: without, model, threshold: default } = labelled_photos(models, pairs_file, root)?;
    let name = model.split('@').next().unwrap_or_default().to_string();
    let reference = Reference::load(&models.dir, &name, &model)?
        .with_context(|| format!("no reference for {model} in {}", Reference::path(&models.dir, &name).display()))?;
    let estimate = Estimate { reference: Some(reference.scores()), gallery: None };
    let held_out = score_pairs(&set, ALL_PAIRS, 0);
    let mut rows = Vec::new();
    let targets = [None, Some(1e-1), Some(1e-2), Some(1e-3), Some(1e-4), Some(1e-5)];
    for target in targets {
        let threshold = match target {
            Some(far) => estimate.threshold_for_far(far).unwrap_or(1.0),
            None => f64::from(default),
        };
        let (g, i) = (&held_out.genuine, &held_out.impostor);
        let false_accepts = i.at_or_above(threshold).round() as u64;
        let false_rejects = g.total() - g.at_or_above(threshold).round() as u64;
        rows.push(CheckRow {
            target_far: target,
            threshold,
            expected_far: estimate.far(threshold).unwrap_or(0.0),
            observed_far: false_accepts as f64 / i.total().max(1) as f64,
            false_accepts,
            expected_frr: estimate.frr(threshold).unwrap_or(0.0),
            observed_frr: false_rejects as f64 / g.total().max(1) as f64,
            false_rejects,
        });
    }
    let check = Check {
        model,
        reference: reference.source,
        photos: set.vectors.len() + without,
        photos_without_face: without,
        genuine_pairs: held_out.genuine.total(),
        impostor_pairs: held_out.impostor.total(),
        rows,
    };
    if json {
        println!("{}", serde_json::to_string(&check)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: {} photos ({} without a face), {} same-person and {} different-person pairs\nreference: {}",
        check.model, check.photos, without, check.genuine_pairs, check.impostor_pairs, check.reference
    );
    println!(
        "{:>10} {:>9} {:>12} {:>12} {:>8} {:>10} {:>10} {:>8}",
        "target", "threshold", "FAR expected", "FAR observed", "accepts", "FRR exp.", "FRR obs.", "rejects"
    );
    for r in &check.rows {
        println!(
            "{:>10} {:>9.4} {:>12.2e} {:>12.2e} {:>8} {:>9.2}% {:>9.2}% {:>8}",
            r.target_far.map_or("default".into(), |t| format!("{t:.0e}")),
            r.threshold,
            r.expected_far,
            r.observed_far,
            r.false_accepts,
            100.0 * r.expected_frr,
            100.0 * r.observed_frr,
            r.false_rejects
        );
    }
    Ok(ExitCode::SUCCESS)
}
