//! Gallery health (`GET /v1/gallery/health`, `visage gallery doctor`):
//! problems an operator can act on, each with the ids needed to act.
//! - faces that disagree with their own person (no other face of the person
//!   reaches the 1:1 threshold: likely mislabelled);
//! - pairs of persons closer than the 1:N threshold (twins, or one person
//!   enrolled twice);
//! - enrollments below the enrollment gates or the detector's bar (enrolled
//!   under laxer settings);
//! - faces with no embedding by this service's model, own or kept beside
//!   (never compared until re-embedded).
use std::collections::{BTreeMap, HashMap};

use futures_util::TryStreamExt as _;
use serde::Serialize;

use super::Service;
use crate::domain::similarity::dot;
use crate::service::error::{Error, Result};

/// Findings listed per kind (the counts cover them all).
pub const MAX_FINDINGS: usize = 1000;
/// Comparisons the look-alike search may make unless asked for all (a
/// second or two): beyond it, an even spread of faces is searched.
const LOOK_ALIKE_BUDGET: usize = 50_000_000;
/// Faces of one person compared with each other (the first ones).
const FACES_COMPARED: usize = 50;

#[derive(Debug, Clone, Serialize)]
pub struct GalleryHealth {
    pub model: String,
    pub faces: usize,
    pub persons: usize,
    /// Two faces of one person below this (the 1:1 threshold in force) disagree.
    pub disagree_below: f32,
    /// Two persons at or above this (the 1:N threshold in force) look alike.
    pub look_alike_from: f32,
    /// Faces searched for look-alikes.
    pub look_alike_probes: usize,
    /// Whether every face was searched (false: an even spread of them, on a large gallery).
    pub complete: bool,
    pub counts: Counts,
    pub disagreeing_faces: Vec<DisagreeingFace>,
    pub look_alikes: Vec<LookAlikes>,
    pub low_quality: Vec<LowQuality>,
    pub other_model: Vec<OtherModel>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub disagreeing_faces: usize,
    pub look_alikes: usize,
    pub low_quality: usize,
    pub other_model: usize,
}

/// A face no other face of its person matches: delete it, or move it.
#[derive(Debug, Clone, Serialize)]
pub struct DisagreeingFace {
    pub person_id: String,
    pub name: String,
    pub face_id: String,
    /// Its highest similarity to the person's other faces.
    pub best_own_similarity: f32,
    pub own_faces: usize,
}

/// Two persons whose faces score at or above the 1:N threshold: one person
/// enrolled twice (merge them) or look-alikes (identify will call them ambiguous).
#[derive(Debug, Clone, Serialize)]
pub struct LookAlikes {
    pub person_ids: [String; 2],
    pub names: [String; 2],
    /// The closest face of each.
    pub face_ids: [String; 2],
    pub similarity: f32,
}

/// An enrollment that today's gates would refuse: replace it with a better photo.
#[derive(Debug, Clone, Serialize)]
pub struct LowQuality {
    pub person_id: String,
    pub name: String,
    pub face_id: String,
    /// `face_too_small`, `face_too_blurry`, `low_detection_score`.
    pub reasons: Vec<&'static str>,
    pub face_size: f32,
    pub sharpness: f32,
    pub detection_score: f32,
}

/// A face with no embedding by this service's model: re-embed it
/// (`visage reembed --to`). `model` is its own.
#[derive(Debug, Clone, Serialize)]
pub struct OtherModel {
    pub person_id: String,
    pub name: String,
    pub face_id: String,
    pub model: String,
}

/// What the gallery scan finds (ids only; names are added after).
struct Scan {
    disagreeing: Vec<DisagreeingFace>,
    look_alikes: Vec<LookAlikes>,
    probes: usize,
}

impl Service {
    /// Checks the gallery; `all` searches every face for look-alikes however large the gallery.
    pub async fn gallery_health(&self, all: bool) -> Result<GalleryHealth> {
        let faces = self.gallery_read().faces();
        let (disagree, alike) = (self.verify_threshold(), self.identify_threshold(faces));
        let gallery = self.gallery.clone();
        let scan = tokio::task::spawn_blocking(move || scan(&gallery.read(), disagree, alike, all))
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("the gallery check failed: {e}")))?;
        let (low_quality, other_model) = self.stored_problems().await?;
        let mut report = GalleryHealth {
            model: self.model.clone(),
            faces,
            persons: self.gallery_read().persons(),
            disagree_below: disagree,
            look_alike_from: alike,
            look_alike_probes: scan.probes,
            complete: scan.probes == faces,
            counts: Counts {
                disagreeing_faces: scan.disagreeing.len(),
                look_alikes: scan.look_alikes.len(),
                low_quality: low_quality.len(),
                other_model: other_model.len(),
            },
            disagreeing_faces: scan.disagreeing,
            look_alikes: scan.look_alikes,
            low_quality,
            other_model,
        };
        report.disagreeing_faces.truncate(MAX_FINDINGS);
        report.look_alikes.truncate(MAX_FINDINGS);
        report.low_quality.truncate(MAX_FINDINGS);
        report.other_model.truncate(MAX_FINDINGS);
        self.name_findings(&mut report).await?;
        Ok(report)
    }

    /// Enrollments below today's gates, and faces this service cannot
    /// compare (no embedding by its model), from the store.
    async fn stored_problems(&self) -> Result<(Vec<LowQuality>, Vec<OtherModel>)> {
        let (min_size, min_sharp) = (self.config.min_face_size, self.config.min_sharpness);
        let min_score = self.engine.pipeline().config.detector.best_score_threshold;
        let (mut low, mut other) = (Vec::new(), Vec::new());
        let mut records = self.store.face_records();
        while let Some(f) = records.try_next().await? {
            if !self.gallery_read().has_face(&f.id) {
                other.push(OtherModel {
                    person_id: f.person_id.unwrap_or_default(),
                    name: String::new(),
                    face_id: f.id,
                    model: f.model,
                });
                continue;
            }
            let q = f.quality;
            // Imported or benchmark faces carry no measurements: nothing to judge.
            if q.face_size == 0.0 && q.sharpness == 0.0 {
                continue;
            }
            let reasons: Vec<&'static str> = [
                (q.face_size < min_size, "face_too_small"),
                (q.sharpness < min_sharp, "face_too_blurry"),
                (f.score < min_score, "low_detection_score"),
            ]
            .into_iter()
            .filter_map(|(bad, why)| bad.then_some(why))
            .collect();
            if !reasons.is_empty() {
                low.push(LowQuality {
                    person_id: f.person_id.unwrap_or_default(),
                    name: String::new(),
                    face_id: f.id,
                    reasons,
                    face_size: q.face_size,
                    sharpness: q.sharpness,
                    detection_score: f.score,
                });
            }
        }
        Ok((low, other))
    }

    async fn name_findings(&self, r: &mut GalleryHealth) -> Result<()> {
        let mut ids: Vec<&str> = r.disagreeing_faces.iter().map(|f| f.person_id.as_str()).collect();
        ids.extend(r.look_alikes.iter().flat_map(|p| p.person_ids.iter().map(String::as_str)));
        ids.extend(r.low_quality.iter().map(|f| f.person_id.as_str()));
        ids.extend(r.other_model.iter().map(|f| f.person_id.as_str()));
        ids.sort_unstable();
        ids.dedup();
        let mut names = HashMap::new();
        for chunk in ids.chunks(500) {
            names.extend(self.store.person_names(chunk).await?);
        }
        let name = |id: &str| names.get(id).cloned().unwrap_or_default();
        r.disagreeing_faces.iter_mut().for_each(|f| f.name = name(&f.person_id));
        r.low_quality.iter_mut().for_each(|f| f.name = name(&f.person_id));
        r.other_model.iter_mut().for_each(|f| f.name = name(&f.person_id));
        for p in &mut r.look_alikes {
            p.names = [name(&p.person_ids[0]), name(&p.person_ids[1])];
        }
        Ok(())
    }
}

/// Faces that match none of their own person's other faces, and pairs of
/// persons at or above `alike`, worst first.
fn scan(g: &crate::gallery::Gallery, disagree: f32, alike: f32, all: bool) -> Scan {
    let faces = g.faces();
    let entries: Vec<(String, String, std::borrow::Cow<'_, [f32]>)> = (0..faces).filter_map(|i| g.entry(i)).collect();
    let mut by_person: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (_, person, _)) in entries.iter().enumerate() {
        by_person.entry(person.as_str()).or_default().push(i);
    }
    let mut disagreeing = Vec::new();
    for (person, own) in &by_person {
        let own = &own[..own.len().min(FACES_COMPARED)];
        if own.len() < 2 {
            continue;
        }
        for &i in own {
            let best =
                own.iter().filter(|&&j| j != i).map(|&j| dot(&entries[i].2, &entries[j].2)).fold(f32::MIN, f32::max);
            if best < disagree {
                disagreeing.push(DisagreeingFace {
                    person_id: person.to_string(),
                    name: String::new(),
                    face_id: entries[i].0.clone(),
                    best_own_similarity: best,
                    own_faces: own.len(),
                });
            }
        }
    }
    disagreeing.sort_by(|a, b| a.best_own_similarity.total_cmp(&b.best_own_similarity));
    let probes = if all { faces } else { faces.min((LOOK_ALIKE_BUDGET / faces.max(1)).max(1)) };
    let step = faces as f64 / probes.max(1) as f64;
    let mut pairs: HashMap<(String, String), LookAlikes> = HashMap::new();
    for k in 0..probes {
        let (face, person, v) = &entries[((k as f64 * step) as usize).min(faces - 1)];
        for c in g.search(v, 4) {
            if c.person_id == *person || c.similarity < alike {
                continue;
            }
            let (a, b, fa, fb) = match person.as_str() < c.person_id.as_str() {
                true => (person.clone(), c.person_id.clone(), face.clone(), c.face_id.clone()),
                false => (c.person_id.clone(), person.clone(), c.face_id.clone(), face.clone()),
            };
            let entry = pairs.entry((a.clone(), b.clone())).or_insert_with(|| LookAlikes {
                person_ids: [a, b],
                names: [String::new(), String::new()],
                face_ids: [fa.clone(), fb.clone()],
                similarity: f32::MIN,
            });
            if c.similarity > entry.similarity {
                entry.similarity = c.similarity;
                entry.face_ids = [fa, fb];
            }
        }
    }
    let mut look_alikes: Vec<LookAlikes> = pairs.into_values().collect();
    look_alikes.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
    Scan { disagreeing, look_alikes, probes }
}
