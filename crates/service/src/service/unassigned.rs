//! Faces without a person: kept from a photo (each placed in a cluster as
//! it is written), shown, listed, moved and deleted. Enrolled and unassigned
//! faces are one table; the gallery holds the enrolled ones, the clusters
//! the others, and every change reaches whichever holds the face at once.
use bytes::Bytes;
use serde::Serialize;
use sha2::Digest as _;
use tokio::sync::OwnedMutexGuard;

use super::follow::Touched;
use super::{Service, detect, kept_crop};
use crate::clusters::Placement;
use crate::domain::{BBox, FaceChoice};
use crate::service::error::{Code, Error, Result};
use crate::store::{Crop, FaceRecord, NewFace, Owner, Regroup};
use crate::vision::pipeline::Face;

/// What `POST /v1/faces` kept, and what it refused.
#[derive(Debug, Clone, Serialize)]
pub struct KeptFaces {
    pub faces: Vec<FaceRecord>,
    /// Faces of the photo below the enrollment gates: nothing of them is kept.
    pub refused: Vec<RefusedFace>,
}

/// A face of the photo that was not kept, and why.
#[derive(Debug, Clone, Serialize)]
pub struct RefusedFace {
    #[serde(rename = "box")]
    pub bbox: BBox,
    /// `face_too_small` or `face_too_blurry`.
    pub reason: Code,
    pub message: String,
}

/// Where the faces of a photo go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeepFor<'a> {
    /// Unassigned, each in a cluster.
    Nobody,
    /// Enrolled for this person.
    Person(&'a str),
}

/// A face of the photo with what is stored of it.
struct Analysed {
    face: Face,
    crop: Option<Crop>,
}

impl Service {
    /// Analyses the photo, refuses the faces below the gates and stores the
    /// others, unassigned or for a person, in one transaction.
    pub async fn keep_faces(
        &self,
        bytes: Bytes,
        choice: FaceChoice,
        external_id: Option<&str>,
        to: KeepFor<'_>,
        actor: &str,
    ) -> Result<KeptFaces> {
        self.writable()?;
        if let KeepFor::Person(id) = to {
            self.get_person(id).await?;
        }
        let source = hex::encode(sha2::Sha256::digest(&bytes));
        let (faces, refused) = self.analyse_for_keeping(bytes, choice).await?;
        let embeddings: Vec<Vec<f32>> = faces
            .iter()
            .map(|a| a.face.embedding.as_ref().map(|e| e.values.clone()).ok_or(Error::NoFace))
            .collect::<Result<_>>()?;
        let new: Vec<NewFace<'_>> = faces
            .iter()
            .zip(&embeddings)
            .map(|(a, e)| NewFace {
                detection: &a.face.detection,
                quality: a.face.quality,
                embedding: e,
                model: &self.model,
                source_sha256: Some(&source),
                crop: a.crop.as_ref(),
                external_id,
            })
            .collect();
        let write = self.writes.clone().lock_owned().await;
        let faces = match to {
            KeepFor::Nobody => self.keep_unassigned(new, &embeddings, external_id, actor).await?,
            KeepFor::Person(id) => {
                let mut records = Vec::with_capacity(new.len());
                for face in &new {
                    records.push(self.store.add_face(id, face, actor).await?);
                }
                let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
                self.refresh(write, Touched::changed(ids, Vec::new())).await?;
                records
            }
        };
        Ok(KeptFaces { faces, refused })
    }

    /// Plans each face's cluster, writes faces and merges in one
    /// transaction, then applies the plan (the caller holds the write lock).
    async fn keep_unassigned(
        &self,
        new: Vec<NewFace<'_>>,
        embeddings: &[Vec<f32>],
        external_id: Option<&str>,
        actor: &str,
    ) -> Result<Vec<FaceRecord>> {
        let plans = self.plan_clusters(embeddings.to_vec()).await?;
        let steps: Vec<Regroup> = plans.iter().flat_map(|p| p.steps.iter().cloned()).collect();
        let rows: Vec<(NewFace<'_>, String)> =
            new.into_iter().zip(&plans).map(|(f, p)| (f, p.cluster.clone())).collect();
        let mut records = self.store.keep_faces(&rows, &steps, actor).await?;
        let mut held = self.clusters.write();
        for ((record, plan), values) in records.iter().zip(&plans).zip(embeddings) {
            held.apply(&record.id, plan, values, external_id);
        }
        // A later face's steps may have carried an earlier one further.
        for record in &mut records {
            record.cluster_id = held.cluster_of(&record.id);
        }
        Ok(records)
    }

    /// Keeps embeddings given by value as unassigned faces in one
    /// transaction, as `POST /v1/faces` keeps a photo's (no detection: the
    /// box, landmarks and quality are zero). For benchmarks and bulk loads.
    pub async fn keep_embeddings(&self, embeddings: &[Vec<f32>], actor: &str) -> Result<Vec<FaceRecord>> {
        self.writable()?;
        let none = crate::domain::Detection {
            bbox: BBox { x: 0.0, y: 0.0, width: 0.0, height: 0.0 },
            landmarks: [[0.0; 2]; 5],
            score: 0.0,
        };
        let quality = crate::domain::Quality { face_size: 0.0, eye_distance: 0.0, sharpness: 0.0 };
        let new: Vec<NewFace<'_>> = embeddings
            .iter()
            .map(|e| NewFace {
                detection: &none,
                quality,
                embedding: e,
                model: &self.model,
                source_sha256: None,
                crop: None,
                external_id: None,
            })
            .collect();
        let _write = self.writes.clone().lock_owned().await;
        self.keep_unassigned(new, embeddings, None, actor).await
    }

    /// The held clusters' size in memory: faces, clusters, bytes.
    pub fn clusters_memory(&self) -> (usize, usize, usize) {
        let c = self.clusters.read();
        (c.faces(), c.len(), c.memory_bytes())
    }

    /// The chosen faces embedded (with their crops when kept), and those
    /// below the enrollment gates.
    async fn analyse_for_keeping(&self, bytes: Bytes, choice: FaceChoice) -> Result<(Vec<Analysed>, Vec<RefusedFace>)> {
        let (max, keep) = (self.config.max_faces, self.config.keep_crops);
        let analysed = self
            .with_image(bytes, move |p, img, t| {
                let dets = detect(p, img, t)?;
                if dets.is_empty() {
                    return Err(Error::NoFace);
                }
                let faces = p.analyze_detected(img, dets, choice, max, true, t)?;
                faces
                    .into_iter()
                    .map(|face| {
                        let crop = if keep { Some(kept_crop(img, &face.detection.landmarks)?) } else { None };
                        Ok(Analysed { face, crop })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .await?;
        let (mut kept, mut refused) = (Vec::new(), Vec::new());
        for a in analysed {
            match self.check_enrollable(&a.face) {
                Ok(()) => kept.push(a),
                Err(e) => {
                    refused.push(RefusedFace { bbox: a.face.detection.bbox, reason: e.code(), message: e.to_string() })
                }
            }
        }
        Ok((kept, refused))
    }

    /// Keeps the faces identify could not name (unknown or ambiguous, and
    /// above the enrollment gates) as unassigned, noting each one's id.
    pub(super) async fn remember_unknown(
        &self,
        faces: &mut [super::IdentifiedFace],
        crops: Vec<Option<Crop>>,
        source: &str,
        actor: &str,
    ) -> Result<()> {
        let chosen: Vec<usize> = (0..faces.len())
            .filter(|&i| faces[i].status != super::IdentifyStatus::Identified)
            .filter(|&i| faces[i].face.embedding.is_some() && self.check_enrollable(&faces[i].face).is_ok())
            .collect();
        if chosen.is_empty() {
            return Ok(());
        }
        let embeddings: Vec<Vec<f32>> =
            chosen.iter().filter_map(|&i| faces[i].face.embedding.as_ref().map(|e| e.values.clone())).collect();
        let new: Vec<NewFace<'_>> = chosen
            .iter()
            .zip(&embeddings)
            .map(|(&i, e)| NewFace {
                detection: &faces[i].face.detection,
                quality: faces[i].face.quality,
                embedding: e,
                model: &self.model,
                source_sha256: Some(source),
                crop: crops.get(i).and_then(Option::as_ref),
                external_id: None,
            })
            .collect();
        let _write = self.writes.clone().lock_owned().await;
        let records = self.keep_unassigned(new, &embeddings, None, actor).await?;
        for (&i, r) in chosen.iter().zip(records) {
            faces[i].remembered_face_id = Some(r.id);
        }
        Ok(())
    }

    /// Any stored face, enrolled or not.
    pub async fn get_face(&self, id: &str) -> Result<FaceRecord> {
        self.store.get_face(id).await?.ok_or_else(|| Error::FaceNotFound(id.into()))
    }

    pub async fn list_unassigned(&self, limit: u32, cursor: Option<&str>) -> Result<Vec<FaceRecord>> {
        Ok(self.store.list_unassigned(limit, cursor).await?)
    }

    /// Deletes a face, enrolled or not; the gallery or the clusters forget it at once.
    pub async fn delete_any_face(&self, id: &str, actor: &str) -> Result<()> {
        self.writable()?;
        let write = self.writes.clone().lock_owned().await;
        if !self.store.delete_face_by_id(id, actor).await? {
            return Err(Error::FaceNotFound(id.into()));
        }
        self.refresh(write, Touched::changed(vec![id.to_string()], Vec::new())).await
    }

    /// Gives a face to a person, or (None) takes it from its person into the
    /// cluster it is most similar to (or a new one; it joins, and merges no
    /// clusters).
    pub async fn move_face(&self, id: &str, person: Option<&str>, actor: &str) -> Result<FaceRecord> {
        self.writable()?;
        let write = self.writes.clone().lock_owned().await;
        let face = self.get_face(id).await?;
        let moved = match person {
            Some(p) => self.store.move_face(id, Owner::Person(p), actor).await?,
            None if face.person_id.is_none() => Some(face),
            None => {
                let own = self.store.embeddings_of(&[id], &[], &self.model).await?;
                let cluster = match own.first() {
                    Some(e) if e.model == self.model => {
                        let plan = self.plan_clusters(vec![e.values.clone()]).await?;
                        plan.into_iter().next().map(|p| p.cluster).unwrap_or_else(crate::domain::new_id)
                    }
                    // Not comparable by this model: a cluster of its own.
                    _ => crate::domain::new_id(),
                };
                self.store.move_face(id, Owner::Cluster(&cluster), actor).await?
            }
        };
        let moved = moved.ok_or_else(|| Error::FaceNotFound(id.into()))?;
        self.refresh(write, Touched::changed(vec![id.to_string()], Vec::new())).await?;
        Ok(moved)
    }

    /// Where each face goes, planned on a blocking thread (every arrival
    /// scans every cluster: milliseconds at 100,000 faces, not for an async
    /// worker). The caller holds the write lock, so the plan stays true.
    async fn plan_clusters(&self, embeddings: Vec<Vec<f32>>) -> Result<Vec<Placement>> {
        let clusters = self.clusters.clone();
        tokio::task::spawn_blocking(move || {
            let values: Vec<&[f32]> = embeddings.iter().map(Vec::as_slice).collect();
            clusters.read().plan(&values)
        })
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("planning clusters failed: {e}")))
    }

    /// Makes the gallery and the clusters agree with the store for what
    /// this replica just changed (as following another replica's change does).
    pub(super) async fn refresh(&self, write: OwnedMutexGuard<()>, t: Touched) -> Result<()> {
        let found = t.read(&self.store, &self.model).await?;
        self.apply_found(write, t, found).await?;
        Ok(())
    }
}

/// How often the retention of unassigned faces is applied, at most.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

impl Service {
    /// Deletes the unassigned faces older than `--unassigned-ttl` (audited as
    /// `purge_face` by `ttl`); how many. Enrolled faces are never touched.
    pub async fn purge_unassigned(&self) -> Result<usize> {
        let Some(ttl) = self.config.unassigned_ttl else { return Ok(0) };
        self.writable()?;
        let before = time::OffsetDateTime::now_utc() - ttl;
        let before = before.format(&time::format_description::well_known::Rfc3339).map_err(anyhow::Error::from)?;
        let write = self.writes.clone().lock_owned().await;
        let gone = self.store.purge_unassigned(&before, "ttl").await?;
        let n = gone.len();
        if n > 0 {
            tracing::info!(faces = n, before = %before, "unassigned faces past their retention deleted");
            self.refresh(write, Touched::changed(gone, Vec::new())).await?;
        }
        Ok(n)
    }

    /// Applies the retention at start and then every [`PURGE_EVERY`] (or a
    /// tenth of the retention, when shorter), until the task is aborted.
    pub async fn purge_unassigned_regularly(self: std::sync::Arc<Self>) {
        let Some(ttl) = self.config.unassigned_ttl else { return };
        let every = PURGE_EVERY.min(ttl / 10).max(std::time::Duration::from_secs(1));
        loop {
            if let Err(e) = self.purge_unassigned().await {
                tracing::warn!(error = %e, "deleting unassigned faces past their retention failed; retrying later");
            }
            tokio::time::sleep(every).await;
        }
    }
}
