//! The in-memory 1:N gallery: how it is loaded from the store, reloaded,
//! locked and described.
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures_util::TryStreamExt as _;
use serde::Serialize;
use tokio::sync::OwnedMutexGuard;

use super::Service;
use super::follow::Touched;
use crate::clusters::Clusters;
use crate::gallery::{AnnIndex, ExactIndex, Index, IndexConfig, IndexKind};
use crate::gallery::{Gallery, saved};
use crate::sealing::DataKeys;
use crate::service::error::{Error, Result};
use crate::store::{ChangePos, Store};

#[derive(Debug, Clone, Serialize)]
pub struct GalleryInfo {
    pub faces: usize,
    pub persons: usize,
    /// Stored faces with no embedding by this model: never compared;
    /// `visage reembed` them or re-enroll them.
    pub faces_other_model: usize,
    /// "exact", "exact-i8" or "ann".
    pub index: &'static str,
    /// The graph was reopened from `--index-dir` at the last load, not built.
    pub index_reopened: bool,
}

impl Service {
    /// Reloads the gallery from the store, for changes made outside this
    /// process (the admin commands). Writes wait meanwhile; searches go on
    /// against the old gallery until the new one is swapped in.
    pub async fn reload_gallery(&self) -> Result<GalleryInfo> {
        let write = self.writes.clone().lock_owned().await;
        let dim = self.engine.pipeline().embedder.dim();
        let dir = self.config.index_dir.as_deref();
        let loaded = load_gallery(&self.store, &self.model, dim, self.config.index, dir).await?;
        let gallery = loaded.gallery;
        let clusters = load_clusters(&self.store, &self.model, dim, self.config.cluster_threshold).await?;
        *self.clusters.write() = clusters;
        // The old gallery is dropped on the blocking thread too.
        self.change_gallery(write, move |g| drop(std::mem::replace(g, gallery))).await?;
        *self.loaded_at.lock() = loaded.position;
        self.index_reopened.store(loaded.reopened, std::sync::atomic::Ordering::Relaxed);
        self.faces_other_model.store(loaded.other, std::sync::atomic::Ordering::Relaxed);
        self.recalibrate().await?;
        Ok(self.gallery_info())
    }

    pub(super) fn gallery_read(&self) -> parking_lot::RwLockReadGuard<'_, Gallery> {
        self.gallery.read()
    }

    /// Changes the gallery on a blocking thread, never on an async worker:
    /// the write lock waits for searches in progress. `write` (the `writes`
    /// lock, held since the store changed) keeps the gallery in step with
    /// the store.
    pub(super) async fn change_gallery<T: Send + 'static>(
        &self,
        write: OwnedMutexGuard<()>,
        change: impl FnOnce(&mut Gallery) -> T + Send + 'static,
    ) -> Result<T> {
        let gallery = self.gallery.clone();
        let span = tracing::Span::current();
        let out = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let _write = write;
            change(&mut gallery.write())
        })
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("a gallery change failed: {e}")))?;
        self.recalibrate_when_changed();
        Ok(out)
    }

    /// Saves the graph into `--index-dir` (at shutdown), with the change-log
    /// position the gallery includes; false when there is nothing to save
    /// (an exact index, or no folder).
    pub async fn save_index(&self) -> Result<bool> {
        let Some(dir) = self.config.index_dir.clone() else { return Ok(false) };
        // Writes wait: the gallery holds exactly the position's changes and this replica's own.
        let _write = self.writes.clone().lock_owned().await;
        let position = match &self.follow {
            Some(f) => f.position().await,
            None => *self.loaded_at.lock(),
        };
        let (gallery, model, keys) = (self.gallery.clone(), self.model.clone(), self.store.sealing().clone());
        tokio::task::spawn_blocking(move || saved::save(&dir, &gallery.read(), &model, position, &keys))
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("saving the index failed: {e}")))?
            .map_err(Error::Internal)
    }

    pub fn gallery_info(&self) -> GalleryInfo {
        let g = self.gallery_read();
        GalleryInfo {
            faces: g.faces(),
            persons: g.persons(),
            faces_other_model: self.faces_other_model.load(std::sync::atomic::Ordering::Relaxed),
            index: g.kind(),
            index_reopened: self.index_reopened.load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// The gallery as loaded, and what the service keeps of the loading.
pub struct Loaded {
    pub gallery: Gallery,
    /// Stored faces with no embedding by the model.
    pub other: usize,
    /// A change-log position the gallery includes every change up to.
    pub position: ChangePos,
    /// The graph was reopened from the index folder rather than built.
    pub reopened: bool,
}

/// Builds the in-memory gallery from the store: each face's embedding by
/// `model`, its own or kept beside it (`visage reembed --to`), in the index
/// `index` asks for. A graph is reopened from `dir` when saved there (and
/// caught up from the change log), else built and saved there.
pub async fn load_gallery(
    store: &Store,
    model: &str,
    dim: usize,
    index: IndexConfig,
    dir: Option<&Path>,
) -> Result<Loaded> {
    // Taken before reading: later changes are in the gallery or after it.
    let position = store.change_horizon().await?;
    let counts = store.model_counts().await?;
    let total: u64 = counts.iter().map(|c| c.own).sum();
    let by_model: u64 = counts.iter().filter(|c| c.model == model).map(|c| c.own + c.beside).sum();
    let kind = index.kind.resolve(by_model as usize, index.auto_exact_max);
    if let (IndexKind::Ann, Some(dir)) = (kind, dir)
        && let Some(gallery) = reopen(store, model, dim, index, dir).await?
    {
        let other = total.saturating_sub(by_model) as usize;
        warn_other(other, model);
        return Ok(Loaded { gallery, other, position, reopened: true });
    }
    let (exact, other) = load_exact(store, model, dim).await?;
    let start = Instant::now();
    let build = move || -> Result<Gallery> {
        Ok(match kind {
            IndexKind::Exact | IndexKind::Auto => exact.map_index(|e| e as Box<dyn Index>),
            IndexKind::ExactI8 => exact.map_index(|e| Box::new(e.quantized_copy()) as Box<dyn Index>),
            IndexKind::Ann => {
                let codes = exact.map_index(|e| Box::new(e.quantized_copy()));
                let ann = AnnIndex::build(codes.index(), index.ann).map_err(Error::Internal)?;
                codes.map_index(|_| Box::new(ann) as Box<dyn Index>)
            }
        })
    };
    let gallery = tokio::task::spawn_blocking(build)
        .await
        .map_err(|e| anyhow::anyhow!("building the gallery index failed: {e}"))??;
    tracing::info!(
        index = gallery.kind(),
        faces = gallery.faces(),
        seconds = start.elapsed().as_secs_f64(),
        "gallery index ready"
    );
    let gallery = match (kind, dir) {
        (IndexKind::Ann, Some(dir)) => {
            save_blocking(gallery, dir.to_path_buf(), model.to_string(), position, store.sealing().clone()).await?
        }
        _ => gallery,
    };
    Ok(Loaded { gallery, other, position, reopened: false })
}

fn warn_other(other: usize, model: &str) {
    if other > 0 {
        tracing::warn!(
            faces = other,
            model = %model,
            "stored faces have no embedding by this model and will not be compared; run `visage reembed --to` this embedder (with --photos DIR unless their crops were kept) or re-enroll those persons"
        );
    }
}

/// Every face's embedding by `model`, exactly indexed as f32.
async fn load_exact(store: &Store, model: &str, dim: usize) -> Result<(Gallery<ExactIndex>, usize)> {
    let mut gallery: Gallery<ExactIndex> = Gallery::new(Box::new(ExactIndex::new(dim)));
    let mut other = 0usize;
    let mut embeddings = store.embeddings(model);
    while let Some(e) = embeddings.try_next().await? {
        if e.model != model || !gallery.insert(&e.face_id, &e.person_id, &e.values) {
            other += 1;
        }
    }
    drop(embeddings);
    warn_other(other, model);
    tracing::info!(faces = gallery.faces(), persons = gallery.persons(), "gallery loaded");
    Ok((gallery, other))
}

/// Every unassigned face's embedding by `model`, in the cluster stored with it.
pub async fn load_clusters(store: &Store, model: &str, dim: usize, join: f32) -> Result<Clusters> {
    let start = Instant::now();
    let mut clusters = Clusters::new(dim, join);
    let mut other = 0usize;
    let mut embeddings = store.unassigned_embeddings(model);
    while let Some(e) = embeddings.try_next().await? {
        if e.model != model || !clusters.insert(&e.face_id, &e.cluster_id, &e.values, e.external_id.as_deref()) {
            other += 1;
        }
    }
    if other > 0 {
        tracing::warn!(faces = other, "unassigned faces have no embedding by this model and are not clustered");
    }
    tracing::info!(
        faces = clusters.faces(),
        clusters = clusters.len(),
        seconds = start.elapsed().as_secs_f64(),
        "unassigned faces loaded"
    );
    Ok(clusters)
}

/// Saves the graph into `dir` on a blocking thread; a failure is logged (the
/// graph is built again at the next start).
async fn save_blocking(
    gallery: Gallery,
    dir: PathBuf,
    model: String,
    position: ChangePos,
    keys: DataKeys,
) -> Result<Gallery> {
    let saved = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        match saved::save(&dir, &gallery, &model, position, &keys) {
            Ok(_) => tracing::info!(dir = %dir.display(), seconds = start.elapsed().as_secs_f64(), "index saved"),
            Err(e) => tracing::error!(dir = %dir.display(), error = %e, "saving the index failed"),
        }
        gallery
    });
    saved.await.map_err(|e| Error::Internal(anyhow::anyhow!("saving the index failed: {e}")))
}

/// The graph saved in `dir`, caught up with every change after its position;
/// None when there is none, it does not fit, or the catch-up finds the
/// gallery switched to another model (then it is built anew).
async fn reopen(store: &Store, model: &str, dim: usize, index: IndexConfig, dir: &Path) -> Result<Option<Gallery>> {
    let start = Instant::now();
    let (d, m, keys) = (dir.to_path_buf(), model.to_string(), store.sealing().clone());
    let opened = tokio::task::spawn_blocking(move || saved::open(&d, &m, dim, index.ann, &keys))
        .await
        .map_err(|e| anyhow::anyhow!("reading the saved index failed: {e}"))?;
    let Some((mut gallery, mut position)) = opened else { return Ok(None) };
    let opened_in = start.elapsed().as_secs_f64();
    let mut applied = 0;
    loop {
        let changes = store.changes_after(position, 1000).await?;
        let Some(last) = changes.last().map(|c| c.pos) else { break };
        let touched = Touched::of(&changes);
        if touched.reload {
            tracing::info!("the gallery changed model since the index was saved; building it again");
            return Ok(None);
        }
        if !touched.is_empty() {
            let found = touched.read(store, model).await?.enrolled;
            // Graph inserts take milliseconds each: off the async workers
            // (a reload runs while the service serves).
            let m = model.to_string();
            gallery = tokio::task::spawn_blocking(move || {
                touched.apply(&mut gallery, &found, &m);
                gallery
            })
            .await
            .map_err(|e| anyhow::anyhow!("catching up the saved index failed: {e}"))?;
        }
        applied += changes.len();
        position = last;
        if changes.len() < 1000 {
            break;
        }
    }
    // Counted again: replicas may have enrolled since the first count.
    let counts = store.model_counts().await?;
    let expected: usize = counts.iter().filter(|c| c.model == model).map(|c| (c.own + c.beside) as usize).sum();
    if gallery.faces() != expected {
        tracing::warn!(
            saved = gallery.faces(),
            stored = expected,
            "the saved index does not hold the stored faces; building it again"
        );
        return Ok(None);
    }
    tracing::info!(
        faces = gallery.faces(),
        changes = applied,
        open_seconds = opened_in,
        seconds = start.elapsed().as_secs_f64(),
        "saved index reopened and caught up"
    );
    Ok(Some(if applied > 0 {
        save_blocking(gallery, dir.to_path_buf(), model.to_string(), position, store.sealing().clone()).await?
    } else {
        gallery
    }))
}
