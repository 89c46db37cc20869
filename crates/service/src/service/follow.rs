//! Replicas on one database follow each other. Every change is written with
//! its audit record in one transaction; the audit log is the change log
//! (see `store::Database::changes_after`). Each replica keeps a position in
//! it and, woken by a notification or every [`POLL`], applies what other
//! replicas (or the admin commands) changed: faces enrolled, re-embedded or
//! deleted, persons deleted or imported, keys created or revoked. A change
//! names what it touched; the replica re-reads that from the database and
//! makes its memory agree, so applying a change twice (its own, say) is
//! harmless. A missed notification, a lost connection or a late start only
//! delays the catch-up: the position says where to resume.
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::Service;
use super::keys::KeyRing;
use crate::clusters::Clusters;
use crate::gallery::Gallery;
use crate::service::error::{Error, Result};
use crate::store::{Change, ChangePos, Store, StoreResult, StoredEmbedding, UnassignedEmbedding};
use crate::telemetry;

/// Longest wait between two catch-ups without a notification.
pub const POLL: Duration = Duration::from_millis(1000);
/// Longest one database call of a catch-up may take before the database
/// counts as unreachable (waiting for this replica's own writes, or for an
/// index rebuild, does not count).
const PROBE: Duration = Duration::from_secs(2);

/// `call`, or `database_unavailable` when it takes longer than [`PROBE`].
async fn probed<T>(call: impl std::future::Future<Output = crate::store::StoreResult<T>>) -> Result<T> {
    match tokio::time::timeout(PROBE, call).await {
        Ok(answer) => Ok(answer?),
        Err(_) => Err(Error::DatabaseUnavailable(format!("the database did not answer within {PROBE:?}"))),
    }
}
/// Changes read per query.
const BATCH: u32 = 1000;

/// A replica's place in the change log and what it keeps besides the gallery.
pub(super) struct Follow {
    pub(super) keys: KeyRing,
    /// Names of persons seen in answers, for answers while the database is down.
    pub(super) names: parking_lot::Mutex<HashMap<String, String>>,
    position: tokio::sync::Mutex<ChangePos>,
    /// Whether the database answered the last catch-up.
    up: AtomicBool,
}

impl Follow {
    pub(super) fn new(keys: KeyRing, position: ChangePos) -> Self {
        let names = parking_lot::Mutex::new(HashMap::new());
        Self { keys, names, position: tokio::sync::Mutex::new(position), up: AtomicBool::new(true) }
    }

    /// The position every change up to which has been applied.
    pub(super) async fn position(&self) -> ChangePos {
        *self.position.lock().await
    }
}

/// The touched faces as stored now.
pub(super) struct Found {
    pub(super) enrolled: Vec<StoredEmbedding>,
    pub(super) unassigned: Vec<UnassignedEmbedding>,
}

/// What a batch of changes touched.
#[derive(Default)]
pub(super) struct Touched {
    faces: Vec<String>,
    /// Faces whose embedding or person changed: replaced, not just added.
    replaced: HashSet<String>,
    /// Clusters relabelled into others: their faces (as held) are re-read.
    clusters: Vec<String>,
    persons: Vec<String>,
    renamed: Vec<String>,
    keys: Vec<String>,
    /// Own and beside embeddings were switched or pruned: load anew.
    pub(super) reload: bool,
}

impl Touched {
    pub(super) fn of(changes: &[Change]) -> Self {
        let mut t = Touched::default();
        for c in changes {
            let subject = c.subject.clone();
            match c.action.as_str() {
                "enroll_face" | "delete_face" | "keep_face" | "purge_face" => t.faces.push(subject),
                "reembed_face" | "move_face" | "assign_face" | "regroup_face" => {
                    t.replaced.insert(subject.clone());
                    t.faces.push(subject);
                }
                "merge_cluster" => t.clusters.push(subject),
                "delete_person" | "import_person" => {
                    t.renamed.push(subject.clone());
                    t.persons.push(subject);
                }
                "update_person" => t.renamed.push(subject),
                "create_key" | "revoke_key" => t.keys.push(subject),
                "switch_model" | "prune_embeddings" => t.reload = true,
                // create_person: nothing of theirs is in memory yet.
                _ => {}
            }
        }
        t
    }
}

impl Touched {
    /// Faces this replica changed (and persons it deleted): each re-read and replaced.
    pub(super) fn changed(faces: Vec<String>, persons: Vec<String>) -> Self {
        Touched { replaced: faces.iter().cloned().collect(), faces, persons, ..Touched::default() }
    }

    /// Whether nothing the gallery holds was touched.
    pub(super) fn is_empty(&self) -> bool {
        self.faces.is_empty() && self.persons.is_empty() && self.clusters.is_empty() && !self.reload
    }

    /// Faces whose cluster changed, by the clusters held now.
    pub(super) fn with_faces_of_clusters(mut self, held: &Clusters) -> Self {
        for c in std::mem::take(&mut self.clusters) {
            self.faces.extend(held.faces_of(&c));
        }
        self
    }

    /// The touched faces' and persons' embeddings by `model` as stored now:
    /// the enrolled ones, and the unassigned ones.
    pub(super) async fn read(&self, store: &Store, model: &str) -> StoreResult<Found> {
        let faces: Vec<&str> = self.faces.iter().map(String::as_str).collect();
        let persons: Vec<&str> = self.persons.iter().map(String::as_str).collect();
        let enrolled = store.embeddings_of(&faces, &persons, model).await?;
        let unassigned = store.unassigned_of(&faces, model).await?;
        Ok(Found { enrolled, unassigned })
    }

    /// Makes the clusters agree with what [`Touched::read`] found.
    pub(super) fn apply_clusters(&self, c: &mut Clusters, found: &[UnassignedEmbedding], model: &str) {
        for face in &self.faces {
            c.remove(face);
        }
        for e in found.iter().filter(|e| e.model == model) {
            c.insert(&e.face_id, &e.cluster_id, &e.values, e.external_id.as_deref());
        }
    }

    /// Makes the gallery agree with what [`Touched::read`] found; returns how
    /// many found faces have no embedding by `model`.
    pub(super) fn apply(&self, g: &mut Gallery, found: &[StoredEmbedding], model: &str) -> usize {
        let present: HashSet<&str> = found.iter().map(|e| e.face_id.as_str()).collect();
        let with_faces: HashSet<&str> = found.iter().map(|e| e.person_id.as_str()).collect();
        for face in &self.faces {
            if self.replaced.contains(face) || !present.contains(face.as_str()) {
                g.remove_face(face);
            }
        }
        for person in &self.persons {
            if !with_faces.contains(person.as_str()) {
                g.remove_person(person);
            }
        }
        let mut other = 0usize;
        for e in found {
            if e.model == model {
                g.insert(&e.face_id, &e.person_id, &e.values);
            } else {
                other += 1;
            }
        }
        other
    }
}

impl Service {
    /// Whether this replica shares its database with others and follows them.
    pub fn follows(&self) -> bool {
        self.follow.is_some()
    }

    /// Refuses a write at once while the database is known to be unreachable
    /// (instead of waiting for a connection that will not come).
    pub(super) fn writable(&self) -> Result<()> {
        match &self.follow {
            Some(f) if !f.up.load(Ordering::Relaxed) => Err(Error::DatabaseUnavailable(
                "the database cannot be reached: writes are refused until it is back; verify and identify answer \
                 from this replica's memory meanwhile"
                    .into(),
            )),
            _ => Ok(()),
        }
    }

    /// Whether the database answered the last catch-up (always true when not following).
    pub fn database_up(&self) -> bool {
        self.follow.as_ref().is_none_or(|f| f.up.load(Ordering::Relaxed))
    }

    /// Applies every change committed since the last call, by any process;
    /// returns how many changes were read.
    pub async fn catch_up(&self) -> Result<usize> {
        let Some(f) = &self.follow else { return Ok(0) };
        let mut position = f.position.lock().await;
        let mut read = 0;
        loop {
            let changes = probed(self.store.changes_after(*position, BATCH)).await?;
            let Some(last) = changes.last().map(|c| c.pos) else { break };
            self.apply(f, Touched::of(&changes)).await?;
            telemetry::record_changes_followed(changes.len());
            *position = last;
            read += changes.len();
            if changes.len() < BATCH as usize {
                break;
            }
        }
        Ok(read)
    }

    async fn apply(&self, f: &Follow, t: Touched) -> Result<()> {
        for id in &t.keys {
            probed(f.keys.refresh(&self.store, id)).await?;
        }
        {
            let mut names = f.names.lock();
            for id in &t.renamed {
                names.remove(id);
            }
        }
        if t.reload {
            // Everything else in the batch is in the fresh load too.
            self.reload_gallery().await?;
            return Ok(());
        }
        if t.is_empty() {
            return Ok(());
        }
        // Read and applied under the write lock: a write of this replica
        // cannot slip between the read and the change of the gallery.
        let write = self.writes.clone().lock_owned().await;
        let t = t.with_faces_of_clusters(&self.clusters.read());
        let found = probed(t.read(&self.store, &self.model)).await?;
        let other = self.apply_found(write, t, found).await?;
        if other > 0 {
            tracing::warn!(faces = other, "followed faces were embedded by another model and are not compared");
        }
        Ok(())
    }

    /// Makes the clusters and the gallery agree with what was read for `t`
    /// (`write` held since before the read); how many enrolled faces found
    /// have no embedding by this model.
    pub(super) async fn apply_found(
        &self,
        write: tokio::sync::OwnedMutexGuard<()>,
        t: Touched,
        found: Found,
    ) -> Result<usize> {
        t.apply_clusters(&mut self.clusters.write(), &found.unassigned, &self.model);
        let model = self.model.clone();
        self.change_gallery(write, move |g| t.apply(g, &found.enrolled, &model)).await
    }

    /// Follows the change log until the task is aborted: catches up at each
    /// notification, every [`POLL`] without one, and at once after a lost
    /// connection; marks the database down while it cannot be reached.
    pub async fn follow_changes(self: std::sync::Arc<Self>) {
        use futures_util::StreamExt as _;
        let Some(f) = &self.follow else { return };
        let mut signals = None;
        loop {
            let ok = self.probe_catch_up().await;
            if f.up.swap(ok, Ordering::Relaxed) != ok {
                if ok {
                    tracing::info!("the database is reachable again: writes accepted, changes followed");
                } else {
                    tracing::error!("the database cannot be reached: writes refused, serving matches from memory");
                }
            }
            if !ok {
                signals = None;
            } else if signals.is_none() {
                // Listening starts after a catch-up: catch up once more at
                // once, for what committed in between.
                match tokio::time::timeout(PROBE, self.store.change_signals()).await {
                    Ok(Ok(s)) => {
                        signals = s;
                        continue;
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot listen for changes; polling"),
                    Err(_) => tracing::warn!("listening for changes timed out; polling"),
                }
            }
            match signals.as_mut() {
                Some(s) => match tokio::time::timeout(POLL, s.next()).await {
                    Ok(Some(Ok(()))) | Err(_) => {}
                    // The connection was lost: notifications may have been missed.
                    Ok(Some(Err(_)) | None) => signals = None,
                },
                None => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// One catch-up; false when the database could not be reached (a call
    /// failed to connect or took longer than [`PROBE`]). Any other failure
    /// is logged and the same changes are tried again at the next round.
    async fn probe_catch_up(&self) -> bool {
        let start = Instant::now();
        match self.catch_up().await {
            Ok(n) => {
                if n > 0 {
                    tracing::debug!(changes = n, seconds = start.elapsed().as_secs_f64(), "caught up");
                }
                true
            }
            Err(e @ (Error::DatabaseUnavailable(_) | Error::Unavailable(_))) => {
                tracing::warn!(error = %e, "catching up with the change log failed");
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "applying followed changes failed; retrying at the next round");
                true
            }
        }
    }
}
