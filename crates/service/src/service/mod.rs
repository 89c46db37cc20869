//! The domain layer: enrollment, verification, identification and the rest,
//! over the inference engine, the store and the in-memory gallery. HTTP
//! handlers are thin wrappers around these methods. One file per use case:
//! `enroll` (enrollment, re-embedding, face removal), `matching` (compare,
//! verify, identify), `persons`, and `gallery` (the in-memory 1:N index and
//! how it is loaded from the store).
mod calibration;
pub mod calibration_report;
mod clusters;
pub mod deliveries;
pub mod embedder_switch;
mod enroll;
pub mod error;
mod follow;
mod gallery;
pub mod health;
pub mod info;
mod keys;
mod matching;
pub mod mqtt_sink;
pub mod outbox;
mod persons;
mod search;
mod unassigned;
pub mod webhooks;

pub use calibration::{Calibrated, GallerySample, ThresholdChoice, ThresholdRule};
pub use calibration_report::CalibrationReport;
pub use clusters::{Assigned, ClusterCursor, ClusterInfo, ClusterPage, FaceRef, Merged, NameAs, NearestPerson};
pub use embedder_switch::{GalleryModels, ModelChanges};
pub use enroll::{EnrollTarget, Enrollment};
pub use gallery::{GalleryInfo, Loaded, load_clusters, load_gallery};
pub use health::GalleryHealth;
pub use matching::{
    Comparison, DecisionRule, Identification, IdentifiedFace, IdentifiedPerson, IdentifyStatus, Verdict, Verification,
    assign,
};
pub use search::{Among, SimilarFace};
use std::sync::Arc;
use std::time::Instant;
pub use unassigned::{KeepFor, KeptFaces, RefusedFace};

use parking_lot::RwLock;

use bytes::Bytes;
use image::RgbImage;
use serde::Serialize;

use crate::clusters::Clusters;
use crate::domain::{Detection, FaceChoice};
use crate::engine::Engine;
use crate::gallery::{Gallery, IndexConfig};
use crate::service::error::{Error, Result};
use crate::store::Store;
use crate::telemetry;
use crate::vision::pipeline::{Face, Pipeline, Timings, choose};

/// Decision thresholds and enrollment rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceConfig {
    /// How the cosine similarity at or above which 1:1 verify/compare say "match" is set.
    pub verify: ThresholdRule,
    /// How the stricter 1:N identification threshold is set.
    pub identify: ThresholdRule,
    /// How far the best of two persons above the 1:N threshold must lead
    /// the second to be named (None: the reference's calibrated margin).
    pub identify_margin: Option<f32>,
    /// The embedder's reference score distribution, when it ships one.
    #[serde(skip)]
    pub reference: Option<Arc<crate::calibration::Reference>>,
    /// Every embedder of the manifest with its 1:N rule (the change report
    /// between models).
    #[serde(skip)]
    pub embedders: Vec<crate::calibration::EmbedderPolicy>,
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
    /// Where the approximate index is saved between runs (`--index-dir`):
    /// None builds it at every start.
    pub index_dir: Option<std::path::PathBuf>,
    /// Keep each enrolled face's aligned crop (`--keep-crops`), so that
    /// another embedder can be moved to without the photos.
    pub keep_crops: bool,
    /// Whether identify may keep the faces it cannot name (`remember=unknown`;
    /// `--remember-unknown`).
    pub remember_unknown: bool,
    /// Unassigned faces older than this are deleted by the service (None: kept).
    pub unassigned_ttl: Option<std::time::Duration>,
    /// The average similarity at or above which an unassigned face joins a
    /// cluster, and two clusters merge.
    pub cluster_threshold: f32,
    /// Identify's events that wait in memory at most while the database is down.
    pub event_queue: usize,
    /// How webhooks are delivered to (retries, timeouts, allowed targets).
    #[serde(skip)]
    pub webhooks: deliveries::DeliveryConfig,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            verify: ThresholdRule::EmbedderDefault(crate::calibration::DEFAULT_VERIFY_THRESHOLD),
            identify: ThresholdRule::EmbedderDefault(crate::calibration::DEFAULT_IDENTIFY_THRESHOLD),
            identify_margin: None,
            reference: None,
            embedders: Vec::new(),
            min_face_size: 40.0,
            min_sharpness: 25.0,
            max_faces: 20,
            default_top_k: 5,
            max_top_k: 100,
            index: IndexConfig::default(),
            index_dir: None,
            keep_crops: false,
            remember_unknown: false,
            unassigned_ttl: Some(std::time::Duration::from_secs(30 * 24 * 3600)),
            cluster_threshold: crate::clusters::DEFAULT_JOIN,
            event_queue: outbox::DEFAULT_QUEUE,
            webhooks: deliveries::DeliveryConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageSize {
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub image: ImageSize,
    pub faces: Vec<Face>,
}

pub struct Service {
    engine: Engine,
    store: Store,
    gallery: Arc<RwLock<Gallery>>,
    /// The unassigned faces, in clusters (changed under `writes` too).
    clusters: Arc<RwLock<Clusters>>,
    /// Serialises writes so the store and the gallery change together (and
    /// held by a background index rebuild until it is swapped in).
    writes: Arc<tokio::sync::Mutex<()>>,
    faces_other_model: std::sync::atomic::AtomicUsize,
    /// The estimate thresholds are derived from.
    calibration: calibration::Calibration,
    /// On a database shared by replicas: the place in the change log, the key ring.
    follow: Option<follow::Follow>,
    /// A change-log position the gallery included when it was loaded (a
    /// saved index is caught up from there).
    loaded_at: parking_lot::Mutex<crate::store::ChangePos>,
    /// Whether the last load reopened a saved graph.
    index_reopened: std::sync::atomic::AtomicBool,
    model: String,
    /// Identify's events, and those waiting for the database.
    pub events: Arc<outbox::EventLog>,
    /// Sends the outbox to the webhooks (started by the server).
    pub deliverer: Arc<deliveries::Deliverer>,
    pub config: ServiceConfig,
    pub started: Instant,
}

impl Service {
    /// Loads the gallery from the store: embeddings of the loaded embedder only.
    pub async fn new(engine: Engine, store: Store, config: ServiceConfig) -> Result<Self> {
        let model = engine.pipeline().embedder.id().to_string();
        let dim = engine.pipeline().embedder.dim();
        // The position is taken before the load: what commits meanwhile is
        // in the gallery or after the position (applying it again is harmless).
        let follow = match store.shared() {
            true => {
                let position = store.change_horizon().await?;
                Some(follow::Follow::new(keys::KeyRing::load(&store).await?, position))
            }
            false => None,
        };
        let loaded = load_gallery(&store, &model, dim, config.index, config.index_dir.as_deref()).await?;
        let (gallery, other) = (loaded.gallery, loaded.other);
        let clusters = load_clusters(&store, &model, dim, config.cluster_threshold).await?;
        let events = outbox::EventLog::new(store.clone(), config.event_queue);
        let deliverer = deliveries::Deliverer::new(store.clone(), config.webhooks.clone(), events.written())
            .map_err(|e| Error::Internal(anyhow::anyhow!("the webhook client cannot start: {e}")))?;
        let service = Self {
            events,
            deliverer,
            loaded_at: parking_lot::Mutex::new(loaded.position),
            index_reopened: loaded.reopened.into(),
            follow,
            engine,
            store,
            gallery: Arc::new(RwLock::new(gallery)),
            clusters: Arc::new(RwLock::new(clusters)),
            writes: Arc::new(tokio::sync::Mutex::new(())),
            faces_other_model: other.into(),
            calibration: calibration::Calibration::default(),

            model,
            config,
            started: Instant::now(),
        };
        service.recalibrate().await?;
        Ok(service)
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

    /// Ready to serve: workers alive and the database answering (within
    /// two seconds: a load balancer's health check must not hang).
    pub async fn ready(&self) -> std::result::Result<(), String> {
        if !self.engine.healthy() {
            return Err("the inference workers are not running".into());
        }
        if !self.database_up() {
            return Err("the database cannot be reached".into());
        }
        match tokio::time::timeout(std::time::Duration::from_secs(2), self.store.ping()).await {
            Ok(answer) => answer.map_err(|e| format!("the database does not answer: {e}")),
            Err(_) => Err("the database does not answer within 2 s".into()),
        }
    }

    /// Runs `f` with the decoded image on an inference thread; the stage
    /// timings `f` adds to go to the metrics.
    pub(super) async fn with_image<T, F>(&self, bytes: Bytes, f: F) -> Result<T>
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
        Ok(self.analyze_keeping(bytes, embed, false).await?.0)
    }

    /// [`Service::analyze`], with each face's crop to keep when `crops`.
    pub(super) async fn analyze_keeping(
        &self,
        bytes: Bytes,
        embed: bool,
        crops: bool,
    ) -> Result<(Analysis, Vec<Option<crate::store::Crop>>)> {
        let max = self.config.max_faces;
        self.with_image(bytes, move |p, img, t| {
            let dets = detect(p, img, t)?;
            let faces = p.analyze_detected(img, dets, FaceChoice::All, max, embed, t)?;
            let kept = faces
                .iter()
                .map(|f| if crops { kept_crop(img, &f.detection.landmarks).map(Some) } else { Ok(None) })
                .collect::<Result<Vec<_>>>()?;
            Ok((Analysis { image: ImageSize { width: img.width(), height: img.height() }, faces }, kept))
        })
        .await
    }

    /// The one face to use from a photo, embedded.
    pub(super) async fn probe(&self, bytes: Bytes, choice: FaceChoice) -> Result<Face> {
        Ok(self.probe_keeping(bytes, choice, false).await?.0)
    }

    /// [`Service::probe`], with the face's kept crop when `keep` (`--keep-crops`).
    pub(super) async fn probe_keeping(
        &self,
        bytes: Bytes,
        choice: FaceChoice,
        keep: bool,
    ) -> Result<(Face, Option<crate::store::Crop>)> {
        self.with_image(bytes, move |p, img, t| {
            let dets = detect(p, img, t)?;
            let det = choose(dets, choice, img)?.into_iter().next().ok_or(Error::NoFace)?;
            let crop = if keep { Some(kept_crop(img, &det.landmarks)?) } else { None };
            Ok((p.describe(img, det, true, t)?, crop))
        })
        .await
    }
}

/// The face's kept crop, as PNG.
fn kept_crop(img: &RgbImage, landmarks: &[crate::domain::Point; 5]) -> Result<crate::store::Crop> {
    let (png, landmarks) = crate::vision::kept::encode(img, landmarks).ok_or(Error::NoFace)?;
    Ok(crate::store::Crop { png, landmarks })
}

/// Detection, timed and counted for the metrics.
pub(super) fn detect(p: &Pipeline, img: &RgbImage, t: &mut Timings) -> anyhow::Result<Vec<Detection>> {
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

/// A shared handle to the service.
pub type SharedService = Arc<Service>;
