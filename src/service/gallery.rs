//! The in-memory 1:N gallery: how it is loaded from the store, reloaded,
//! locked and described.
use std::time::Instant;

use futures_util::TryStreamExt as _;
use serde::Serialize;
use tokio::sync::OwnedMutexGuard;

use super::{Gallery, Service};
use crate::error::{Error, Result};
use crate::gallery::{ExactIndex, HnswIndex, Index, IndexConfig, IndexKind};
use crate::store::Store;

#[derive(Debug, Clone, Serialize)]
pub struct GalleryInfo {
    pub faces: usize,
    pub persons: usize,
    /// Stored faces with no embedding by this model: never compared;
    /// `visage reembed` them or re-enroll them.
    pub faces_other_model: usize,
    /// "exact" or "hnsw".
    pub index: &'static str,
}

impl Service {
    /// Reloads the gallery from the store, for changes made outside this
    /// process (the admin commands). Writes wait meanwhile; searches go on
    /// against the old gallery until the new one is swapped in.
    pub async fn reload_gallery(&self) -> Result<GalleryInfo> {
        let write = self.writes.clone().lock_owned().await;
        let dim = self.engine.pipeline().embedder.dim();
        let (gallery, other) = load_gallery(&self.store, &self.model, dim, self.config.index).await?;
        // The old gallery is dropped on the blocking thread too.
        self.change_gallery(write, move |g| drop(std::mem::replace(g, gallery))).await?;
        self.faces_other_model.store(other, std::sync::atomic::Ordering::Relaxed);
        self.recalibrate().await?;
        Ok(self.gallery_info())
    }

    pub(super) fn gallery_read(&self) -> parking_lot::RwLockReadGuard<'_, Gallery> {
        self.gallery.read()
    }

    /// Changes the gallery on a blocking thread, never on an async worker:
    /// the write lock waits for searches in progress. `write` (the `writes`
    /// lock, held since the store changed) keeps the gallery in step with
    /// the store. When the change leaves the index wanting a rebuild
    /// ([`Index::wants_rebuild`]), a fresh copy is built in the background
    /// while searches go on against this one, then swapped in; writes wait
    /// for it, as `write` is held until then.
    pub(super) async fn change_gallery<T: Send + 'static>(
        &self,
        write: OwnedMutexGuard<()>,
        change: impl FnOnce(&mut Gallery) -> T + Send + 'static,
    ) -> Result<T> {
        let gallery = self.gallery.clone();
        let span = tracing::Span::current();
        let (out, rebuild) = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut g = gallery.write();
            let out = change(&mut g);
            (out, g.wants_rebuild())
        })
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("a gallery change failed: {e}")))?;
        self.recalibrate_when_changed();
        if rebuild {
            let gallery = self.gallery.clone();
            let span = tracing::info_span!(parent: None, "gallery_rebuild");
            tokio::task::spawn_blocking(move || {
                let _entered = span.enter();
                let _write = write;
                let start = Instant::now();
                let fresh = gallery.read().rebuilt();
                if let Some(fresh) = fresh {
                    let old = std::mem::replace(&mut *gallery.write(), fresh);
                    drop(old);
                    tracing::info!(seconds = start.elapsed().as_secs_f64(), "gallery index rebuilt");
                }
            });
        }
        Ok(out)
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
}

/// Builds the in-memory gallery from the store: each face's embedding by
/// `model`, its own or kept beside it (`visage reembed --to`). Returns it
/// with the count of faces that have none.
pub async fn load_gallery(store: &Store, model: &str, dim: usize, index: IndexConfig) -> Result<(Gallery, usize)> {
    let mut gallery: Gallery<ExactIndex> = Gallery::new(Box::new(ExactIndex::new(dim)));
    let mut other = 0usize;
    let mut embeddings = store.embeddings(model);
    while let Some(e) = embeddings.try_next().await? {
        if e.model != model || !gallery.insert(&e.face_id, &e.person_id, &e.values) {
            other += 1;
        }
    }
    drop(embeddings);
    if other > 0 {
        tracing::warn!(
            faces = other,
            model = %model,
            "stored faces have no embedding by this model and will not be compared; run `visage reembed --to` this embedder (with --photos DIR unless their crops were kept) or re-enroll those persons"
        );
    }
    tracing::info!(faces = gallery.faces(), persons = gallery.persons(), "gallery loaded");
    let gallery: Gallery = match index.kind {
        IndexKind::Exact => gallery.map_index(|exact| exact as Box<dyn Index>),
        IndexKind::Hnsw => {
            let start = Instant::now();
            let build = move || gallery.map_index(|exact| Box::new(HnswIndex::from_exact(*exact, index.hnsw)) as _);
            let g = tokio::task::spawn_blocking(build)
                .await
                .map_err(|e| anyhow::anyhow!("building the HNSW index failed: {e}"))?;
            tracing::info!(faces = g.faces(), seconds = start.elapsed().as_secs_f64(), "HNSW index built");
            g
        }
    };
    Ok((gallery, other))
}
