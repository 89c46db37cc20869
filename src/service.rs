//! The domain layer: enrollment, verification, identification and the rest,
//! over the inference engine, the store and the in-memory gallery. HTTP
//! handlers are thin wrappers around these methods.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use bytes::Bytes;
use image::RgbImage;
use serde::Serialize;
use sha2::Digest as _;

use crate::domain::Detection;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::gallery::{Candidate, ExactIndex, HnswIndex, Index, IndexConfig, IndexKind};
use crate::store::{FaceRecord, NewFace, Person, Store};
use crate::telemetry;
use crate::vision::pipeline::{Face, Pipeline, Timings};

/// Decision thresholds and enrollment rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceConfig {
    /// Cosine similarity at or above which 1:1 verify/compare say "match".
    pub verify_threshold: f32,
    /// Stricter cosine threshold for 1:N identification.
    pub identify_threshold: f32,
    /// Smallest face side (px) accepted for enrollment.
    pub min_face_size: f32,
    /// Smallest sharpness (Laplacian variance of the aligned crop) accepted for enrollment.
    pub min_sharpness: f32,
    /// Most faces analysed per photo (detect, embed, identify).
    pub max_faces: usize,
    pub default_top_k: usize,
    pub max_top_k: usize,
    /// The 1:N index.
    pub index: IndexConfig,
}

/// 1:N default, calibrated on the deepface development set (see README).
pub const DEFAULT_IDENTIFY_THRESHOLD: f32 = 0.48;

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            verify_threshold: 0.363,
            identify_threshold: DEFAULT_IDENTIFY_THRESHOLD,
            min_face_size: 40.0,
            min_sharpness: 25.0,
            max_faces: 20,
            default_top_k: 5,
            max_top_k: 100,
            index: IndexConfig::default(),
        }
    }
}

/// Which face of the photo to use when it shows several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceChoice {
    /// Exactly one face is required.
    Single,
    /// The largest face.
    Largest,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImageSize {
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Analysis {
    pub image: ImageSize,
    pub faces: Vec<Face>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Enrollment {
    pub person: Person,
    pub face: FaceRecord,
    pub created_person: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Verification {
    #[serde(rename = "match")]
    pub is_match: bool,
    pub similarity: f32,
    pub threshold: f32,
    pub person_id: String,
    /// The enrolled face that matched best.
    pub best_face_id: String,
    /// How many enrolled faces were compared.
    pub compared_faces: usize,
    pub decision: &'static str,
    /// The probe face used.
    pub face: Face,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IdentifiedPerson {
    pub person_id: String,
    pub name: String,
    pub similarity: f32,
    pub face_id: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IdentifiedFace {
    pub face: Face,
    /// The person this face is, or null when no one clears the threshold.
    #[serde(rename = "match")]
    pub matched: Option<IdentifiedPerson>,
    /// "identified" or "unknown".
    pub status: &'static str,
    /// The most similar enrolled persons, best first (whether or not they match).
    pub candidates: Vec<IdentifiedPerson>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Identification {
    pub threshold: f32,
    pub gallery_size: usize,
    pub faces: Vec<IdentifiedFace>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Comparison {
    #[serde(rename = "match")]
    pub is_match: bool,
    pub similarity: f32,
    pub threshold: f32,
    pub face_a: Face,
    pub face_b: Face,
    pub model: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GalleryInfo {
    pub faces: usize,
    pub persons: usize,
    /// Stored faces embedded by another model: never compared; re-enroll them.
    pub faces_other_model: usize,
    /// "exact" or "hnsw".
    pub index: &'static str,
}

pub struct Service {
    engine: Engine,
    store: Store,
    gallery: Arc<RwLock<Box<dyn Index>>>,
    /// Serialises writes so the store and the gallery change together.
    writes: tokio::sync::Mutex<()>,
    faces_other_model: std::sync::atomic::AtomicUsize,
    model: String,
    pub config: ServiceConfig,
    pub started: Instant,
}

impl Service {
    /// Loads the gallery from the store: embeddings of the loaded embedder only.
    pub async fn new(engine: Engine, store: Store, config: ServiceConfig) -> Result<Self> {
        let model = engine.pipeline().embedder.id().to_string();
        let dim = engine.pipeline().embedder.dim();
        let (gallery, other) = load_gallery(&store, &model, dim, config.index).await?;
        Ok(Self {
            engine,
            store,
            gallery: Arc::new(RwLock::new(gallery)),
            writes: tokio::sync::Mutex::new(()),
            faces_other_model: other.into(),
            model,
            config,
            started: Instant::now(),
        })
    }

    /// Reloads the gallery from the store, for changes made outside this
    /// process (the admin commands). Writes wait meanwhile; searches go on
    /// against the old gallery until the new one is swapped in.
    pub async fn reload_gallery(&self) -> Result<GalleryInfo> {
        let _write = self.writes.lock().await;
        let dim = self.engine.pipeline().embedder.dim();
        let (gallery, other) = load_gallery(&self.store, &self.model, dim, self.config.index).await?;
        *self.gallery_write() = gallery;
        self.faces_other_model.store(other, std::sync::atomic::Ordering::Relaxed);
        Ok(self.gallery_info())
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    fn gallery_read(&self) -> std::sync::RwLockReadGuard<'_, Box<dyn Index>> {
        self.gallery.read().unwrap_or_else(|e| e.into_inner())
    }

    fn gallery_write(&self) -> std::sync::RwLockWriteGuard<'_, Box<dyn Index>> {
        self.gallery.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn gallery_info(&self) -> GalleryInfo {
        let g = self.gallery_read();
        GalleryInfo {
            faces: g.faces(),
            persons: g.persons(),
            faces_other_model: self.faces_other_model.load(std::sync::atomic::Ordering::Relaxed),
            index: g.kind(),
        }
    }

    /// Ready to serve: workers alive and the database answering.
    pub async fn ready(&self) -> std::result::Result<(), String> {
        if !self.engine.healthy() {
            return Err("the inference workers are not running".into());
        }
        self.store.ping().await.map_err(|e| format!("the database does not answer: {e}"))
    }

    /// Runs `f` with the decoded image on an inference thread; the stage
    /// timings `f` adds to go to the metrics.
    async fn with_image<T, F>(&self, bytes: Bytes, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Pipeline, &RgbImage, &mut Timings) -> Result<T> + Send + 'static,
    {
        self.engine
            .run(move |p| {
                let mut t = Timings::default();
                let start = Instant::now();
                let img = p.decode(&bytes)?;
                t.decode = start.elapsed();
                let out = f(p, &img, &mut t);
                record_timings(&t);
                out
            })
            .await?
    }

    // ---- stateless analysis -------------------------------------------------

    /// Every face (largest first, at most `max_faces`), optionally embedded.
    pub async fn analyze(&self, bytes: Bytes, embed: bool) -> Result<Analysis> {
        let max = self.config.max_faces;
        self.with_image(bytes, move |p, img, t| {
            let mut dets = detect(p, img, t)?;
            dets.truncate(max);
            let faces = dets.into_iter().map(|d| p.describe(img, d, embed, t)).collect::<anyhow::Result<_>>()?;
            Ok(Analysis { image: ImageSize { width: img.width(), height: img.height() }, faces })
        })
        .await
    }

    /// The one face to use from a photo, embedded.
    async fn probe(&self, bytes: Bytes, choice: FaceChoice) -> Result<Face> {
        self.with_image(bytes, move |p, img, t| {
            let dets = detect(p, img, t)?;
            let det = match (dets.len(), choice) {
                (0, _) => return Err(Error::NoFace),
                (1, _) | (_, FaceChoice::Largest) => dets.into_iter().next().ok_or(Error::NoFace)?,
                (n, FaceChoice::Single) => return Err(Error::MultipleFaces(n)),
            };
            Ok(p.describe(img, det, true, t)?)
        })
        .await
    }

    pub async fn compare(&self, a: Bytes, b: Bytes) -> Result<Comparison> {
        let face_a = self.probe(a, FaceChoice::Largest).await?;
        let face_b = self.probe(b, FaceChoice::Largest).await?;
        let similarity = similarity(&face_a, &face_b)?;
        let threshold = self.config.verify_threshold;
        Ok(Comparison {
            is_match: similarity >= threshold,
            similarity,
            threshold,
            face_a,
            face_b,
            model: self.model.clone(),
        })
    }

    // ---- enrollment ---------------------------------------------------------

    fn check_enrollable(&self, face: &Face) -> Result<()> {
        let q = &face.quality;
        if q.face_size < self.config.min_face_size {
            return Err(Error::FaceTooSmall { size: q.face_size, min: self.config.min_face_size });
        }
        if q.sharpness < self.config.min_sharpness {
            return Err(Error::FaceTooBlurry { sharpness: q.sharpness, min: self.config.min_sharpness });
        }
        Ok(())
    }

    /// Enrolls a face for `person_id`, or for a new person named `new_person`.
    pub async fn enroll(
        &self,
        person_id: Option<&str>,
        new_person: Option<(&str, Option<&serde_json::Value>)>,
        bytes: Bytes,
        choice: FaceChoice,
        actor: &str,
    ) -> Result<Enrollment> {
        if let Some(id) = person_id {
            // Refuse unknown persons before spending inference on them.
            self.get_person(id).await?;
        }
        let source = hex::encode(sha2::Sha256::digest(&bytes));
        let face = self.probe(bytes, choice).await?;
        self.check_enrollable(&face)?;
        let embedding = face.embedding.as_ref().map(|e| e.values.clone()).ok_or(Error::NoFace)?;
        let new = NewFace { face: &face, embedding: &embedding, model: &self.model, source_sha256: Some(&source) };
        let _write = self.writes.lock().await;
        let (person, record, created) = match (person_id, new_person) {
            (Some(id), _) => {
                let record = self.store.add_face(id, &new, actor).await.map_err(|e| not_found(e, id))?;
                let person = self.store.get_person(id).await?.ok_or_else(|| Error::PersonNotFound(id.into()))?;
                (person, record, false)
            }
            (None, Some((name, metadata))) => {
                let (person, record) = self.store.create_person_with_face(name, metadata, &new, actor).await?;
                (person, record, true)
            }
            (None, None) => return Err(Error::InvalidRequest("give a person_id or a name".into())),
        };
        self.gallery_write().insert(&record.id, &record.person_id, &embedding);
        Ok(Enrollment { person, face: record, created_person: created })
    }

    /// Embeds an enrolled face again with the current embedder, from the
    /// photo it was enrolled from (the detection overlapping its stored box
    /// most), and makes it searchable. Returns the updated face.
    pub async fn reembed(&self, face: &FaceRecord, bytes: Bytes, actor: &str) -> Result<FaceRecord> {
        let old = face.bbox;
        let new = self
            .with_image(bytes, move |p, img, t| {
                let dets = detect(p, img, t)?;
                let best = dets.into_iter().max_by(|a, b| a.bbox.iou(&old).total_cmp(&b.bbox.iou(&old)));
                match best {
                    Some(d) if d.bbox.iou(&old) >= 0.3 => Ok(p.describe(img, d, true, t)?),
                    _ => Err(Error::NoFace),
                }
            })
            .await?;
        let embedding = new.embedding.as_ref().map(|e| e.values.clone()).ok_or(Error::NoFace)?;
        let updated = FaceRecord {
            bbox: new.detection.bbox,
            landmarks: new.detection.landmarks,
            score: new.detection.score,
            quality: new.quality,
            model: self.model.clone(),
            ..face.clone()
        };
        let _write = self.writes.lock().await;
        if !self.store.replace_embedding(&updated, &embedding, actor).await? {
            return Err(Error::FaceNotFound(face.id.clone()));
        }
        let mut gallery = self.gallery_write();
        gallery.remove_face(&face.id);
        gallery.insert(&updated.id, &updated.person_id, &embedding);
        if face.model != self.model {
            let _ = self.faces_other_model.fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |n| n.checked_sub(1),
            );
        }
        Ok(updated)
    }

    pub async fn delete_face(&self, person_id: &str, face_id: &str, actor: &str) -> Result<()> {
        self.get_person(person_id).await?;
        let _write = self.writes.lock().await;
        if !self.store.delete_face(person_id, face_id, actor).await? {
            return Err(Error::FaceNotFound(face_id.into()));
        }
        self.gallery_write().remove_face(face_id);
        Ok(())
    }

    // ---- persons ------------------------------------------------------------

    pub async fn create_person(&self, name: &str, metadata: Option<&serde_json::Value>, actor: &str) -> Result<Person> {
        Ok(self.store.create_person(name, metadata, actor).await?)
    }

    pub async fn get_person(&self, id: &str) -> Result<Person> {
        self.store.get_person(id).await?.ok_or_else(|| Error::PersonNotFound(id.into()))
    }

    pub async fn person_faces(&self, id: &str) -> Result<Vec<FaceRecord>> {
        Ok(self.store.list_faces(id).await?)
    }

    pub async fn list_persons(&self, limit: u32, cursor: Option<&str>) -> Result<Vec<Person>> {
        Ok(self.store.list_persons(limit, cursor).await?)
    }

    pub async fn update_person(
        &self,
        id: &str,
        name: Option<&str>,
        metadata: Option<Option<&serde_json::Value>>,
        actor: &str,
    ) -> Result<Person> {
        self.store.update_person(id, name, metadata, actor).await?.ok_or_else(|| Error::PersonNotFound(id.into()))
    }

    /// Deletes the person and every face; the gallery forgets them at once.
    pub async fn delete_person(&self, id: &str, actor: &str) -> Result<()> {
        let _write = self.writes.lock().await;
        if !self.store.delete_person(id, actor).await? {
            return Err(Error::PersonNotFound(id.into()));
        }
        self.gallery_write().remove_person(id);
        Ok(())
    }

    // ---- matching -----------------------------------------------------------

    pub async fn verify(
        &self,
        person_id: &str,
        bytes: Bytes,
        choice: FaceChoice,
        threshold: Option<f32>,
    ) -> Result<Verification> {
        self.get_person(person_id).await?;
        let face = self.probe(bytes, choice).await?;
        let query = &face.embedding.as_ref().ok_or(Error::NoFace)?.values;
        let found = self.gallery_read().best_of_person(query, person_id);
        let (best, compared) = found.ok_or_else(|| Error::NoEnrolledFaces(person_id.into()))?;
        let threshold = threshold.unwrap_or(self.config.verify_threshold);
        Ok(Verification {
            is_match: best.similarity >= threshold,
            similarity: best.similarity,
            threshold,
            person_id: person_id.into(),
            best_face_id: best.face_id,
            compared_faces: compared,
            decision: "highest cosine similarity over the person's enrolled faces, compared with the threshold",
            face,
        })
    }

    /// Every face in the photo against the whole gallery. A person is assigned
    /// to at most one face (the most similar pairs are assigned first).
    pub async fn identify(&self, bytes: Bytes, top_k: Option<usize>, threshold: Option<f32>) -> Result<Identification> {
        let top_k = top_k.unwrap_or(self.config.default_top_k);
        let threshold = threshold.unwrap_or(self.config.identify_threshold);
        let faces = self.analyze(bytes, true).await?.faces;
        // Search a little deeper than top_k so assignment has alternatives.
        let depth = top_k.max(faces.len() + 1);
        let queries: Vec<Option<Vec<f32>>> =
            faces.iter().map(|f| f.embedding.as_ref().map(|e| e.values.clone())).collect();
        let gallery = self.gallery.clone();
        // A large gallery scan takes milliseconds: keep it off the async workers.
        let (gallery_size, lists) = tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            let g = gallery.read().unwrap_or_else(|e| e.into_inner());
            let lists: Vec<Vec<Candidate>> =
                queries.iter().map(|q| q.as_ref().map(|q| g.search(q, depth)).unwrap_or_default()).collect();
            telemetry::record_stage("search", start.elapsed());
            (g.persons(), lists)
        })
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("gallery search failed: {e}")))?;
        let names = self.names(lists.iter().flatten().map(|c| c.person_id.as_str())).await?;
        let assigned = assign(&lists, threshold);
        let person = |c: &Candidate| IdentifiedPerson {
            person_id: c.person_id.clone(),
            name: names.get(&c.person_id).cloned().unwrap_or_default(),
            similarity: c.similarity,
            face_id: c.face_id.clone(),
        };
        let faces = faces
            .into_iter()
            .zip(&lists)
            .zip(assigned)
            .map(|((face, list), a)| {
                let matched = a.map(|i| person(&list[i]));
                IdentifiedFace {
                    status: if matched.is_some() { "identified" } else { "unknown" },
                    matched,
                    candidates: list.iter().take(top_k).map(person).collect(),
                    face,
                }
            })
            .collect();
        Ok(Identification { threshold, gallery_size, faces })
    }

    async fn names<'a>(&self, ids: impl Iterator<Item = &'a str>) -> Result<HashMap<String, String>> {
        let mut unique: Vec<&str> = ids.collect();
        unique.sort_unstable();
        unique.dedup();
        Ok(self.store.person_names(&unique).await?)
    }
}

/// Detection, timed and counted for the metrics.
fn detect(p: &Pipeline, img: &RgbImage, t: &mut Timings) -> anyhow::Result<Vec<Detection>> {
    let start = Instant::now();
    let dets = p.detect(img)?;
    t.detect += start.elapsed();
    telemetry::record_faces(dets.len());
    Ok(dets)
}

fn record_timings(t: &Timings) {
    for (stage, d) in [("decode", t.decode), ("detect", t.detect), ("align", t.align), ("embed", t.embed)] {
        if !d.is_zero() {
            telemetry::record_stage(stage, d);
        }
    }
}

/// Builds the in-memory gallery from the store: embeddings of `model` only.
/// Returns it with the count of faces embedded by another model.
pub async fn load_gallery(
    store: &Store,
    model: &str,
    dim: usize,
    index: IndexConfig,
) -> Result<(Box<dyn Index>, usize)> {
    let mut gallery = ExactIndex::new(dim);
    let mut other = 0usize;
    store
        .for_each_embedding(|e| {
            if e.model != model || !gallery.insert(&e.face_id, &e.person_id, &e.values) {
                other += 1;
            }
        })
        .await?;
    if other > 0 {
        tracing::warn!(
            faces = other,
            model = %model,
            "stored faces were embedded by another model and will not be compared; run `visage reembed --photos DIR` or re-enroll those persons"
        );
    }
    tracing::info!(faces = gallery.faces(), persons = gallery.persons(), "gallery loaded");
    let gallery: Box<dyn Index> = match index.kind {
        IndexKind::Exact => Box::new(gallery),
        IndexKind::Hnsw => {
            let start = Instant::now();
            let g = tokio::task::spawn_blocking(move || HnswIndex::from_exact(gallery, index.hnsw))
                .await
                .map_err(|e| anyhow::anyhow!("building the HNSW index failed: {e}"))?;
            tracing::info!(faces = g.faces(), seconds = start.elapsed().as_secs_f64(), "HNSW index built");
            Box::new(g)
        }
    };
    Ok((gallery, other))
}

/// Greedy one-to-one assignment: the most similar (face, person) pair above
/// `threshold` is fixed first; a person already taken cannot match again.
/// Returns, per face, the index of its assigned candidate.
pub fn assign(lists: &[Vec<Candidate>], threshold: f32) -> Vec<Option<usize>> {
    let mut pairs: Vec<(f32, usize, usize)> = lists
        .iter()
        .enumerate()
        .flat_map(|(f, l)| {
            l.iter().enumerate().filter(|(_, c)| c.similarity >= threshold).map(move |(i, c)| (c.similarity, f, i))
        })
        .collect();
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut out = vec![None; lists.len()];
    let mut taken = std::collections::HashSet::new();
    for (_, f, i) in pairs {
        if out[f].is_none() && !taken.contains(lists[f][i].person_id.as_str()) {
            taken.insert(lists[f][i].person_id.as_str());
            out[f] = Some(i);
        }
    }
    out
}

fn similarity(a: &Face, b: &Face) -> Result<f32> {
    match (&a.embedding, &b.embedding) {
        (Some(a), Some(b)) => Ok(crate::vision::similarity::dot(&a.values, &b.values)),
        _ => Err(Error::NoFace),
    }
}

fn not_found(e: crate::store::StoreError, id: &str) -> Error {
    match e {
        crate::store::StoreError::PersonNotFound => Error::PersonNotFound(id.into()),
        other => other.into(),
    }
}

/// A shared handle to the service.
pub type SharedService = Arc<Service>;

#[cfg(test)]
mod tests {
    use super::*;

    fn c(person: &str, s: f32) -> Candidate {
        Candidate { person_id: person.into(), face_id: format!("{person}-f"), similarity: s }
    }

    #[test]
    fn one_person_is_never_assigned_to_two_faces() {
        // Both faces look most like alice; face 1 more so, so face 0 falls back to bob.
        let lists = vec![vec![c("alice", 0.7), c("bob", 0.6)], vec![c("alice", 0.9), c("bob", 0.2)]];
        assert_eq!(assign(&lists, 0.5), vec![Some(1), Some(0)]);
        // With a stricter threshold face 0 has no one left: unknown.
        assert_eq!(assign(&lists, 0.65), vec![None, Some(0)]);
    }

    #[test]
    fn strangers_below_the_threshold_stay_unknown() {
        let lists = vec![vec![c("alice", 0.3)], vec![]];
        assert_eq!(assign(&lists, 0.45), vec![None, None]);
    }
}
