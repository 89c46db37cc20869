//! Enrollment: a face checked for size and sharpness, stored with its
//! embedding and made searchable at once; re-embedding and face removal.
use bytes::Bytes;
use serde::Serialize;
use sha2::Digest as _;

use super::{Service, detect};
use crate::domain::FaceChoice;
use crate::service::error::{Error, Result};
use crate::store::{Crop, FaceRecord, NewFace, Person};
use crate::vision::pipeline::Face;

#[derive(Debug, Clone, Serialize)]
pub struct Enrollment {
    pub person: Person,
    pub face: FaceRecord,
    pub created_person: bool,
}

/// Whom an enrollment is for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EnrollTarget<'a> {
    /// A person who exists (by id).
    Existing(&'a str),
    /// A new person, created with the face in one transaction.
    New { name: &'a str, metadata: Option<&'a serde_json::Value> },
}

impl Service {
    pub(super) fn check_enrollable(&self, face: &Face) -> Result<()> {
        let q = &face.quality;
        if q.face_size < self.config.min_face_size {
            return Err(Error::FaceTooSmall { size: q.face_size, min: self.config.min_face_size });
        }
        if q.sharpness < self.config.min_sharpness {
            return Err(Error::FaceTooBlurry { sharpness: q.sharpness, min: self.config.min_sharpness });
        }
        Ok(())
    }

    /// Enrolls a face for an existing person or a new one.
    pub async fn enroll(
        &self,
        target: EnrollTarget<'_>,
        bytes: Bytes,
        choice: FaceChoice,
        actor: &str,
    ) -> Result<Enrollment> {
        self.writable()?;
        if let EnrollTarget::Existing(id) = target {
            // Refuse unknown persons before spending inference on them.
            self.get_person(id).await?;
        }
        let source = hex::encode(sha2::Sha256::digest(&bytes));
        let (face, crop) = self.probe_keeping(bytes, choice, self.config.keep_crops).await?;
        self.check_enrollable(&face)?;
        let embedding = face.embedding.as_ref().map(|e| e.values.clone()).ok_or(Error::NoFace)?;
        let new = NewFace {
            detection: &face.detection,
            quality: face.quality,
            embedding: &embedding,
            model: &self.model,
            source_sha256: Some(&source),
            crop: crop.as_ref(),
            external_id: None,
        };
        let write = self.writes.clone().lock_owned().await;
        let (person, record, created) = match target {
            EnrollTarget::Existing(id) => {
                let record = self.store.add_face(id, &new, actor).await?;
                let person = self.store.get_person(id).await?.ok_or_else(|| Error::PersonNotFound(id.into()))?;
                (person, record, false)
            }
            EnrollTarget::New { name, metadata } => {
                let mut person = Person::new(name, metadata);
                let record = self.store.create_person_with_face(&person, &new, actor).await?;
                person.face_count = 1;
                (person, record, true)
            }
        };
        let (face_id, person_id) = (record.id.clone(), person.id.clone());
        self.change_gallery(write, move |g| g.insert(&face_id, &person_id, &embedding)).await?;
        Ok(Enrollment { person, face: record, created_person: created })
    }

    /// Embeds an enrolled face with this service's embedder, from the photo
    /// it was enrolled from (the detection overlapping its stored box most),
    /// keeps the embedding beside the face's own, and makes it searchable.
    /// Where the face was in its photo, and its quality, stay as recorded.
    pub async fn reembed(&self, face: &FaceRecord, bytes: Bytes, actor: &str) -> Result<()> {
        self.writable()?;
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
        let embedding = new.embedding.map(|e| e.values).ok_or(Error::NoFace)?;
        self.store_beside(face, embedding, actor).await
    }

    /// As [`Service::reembed`], from the face's kept crop (`--keep-crops`):
    /// no photo needed.
    pub async fn reembed_from_crop(&self, face: &FaceRecord, crop: &Crop, actor: &str) -> Result<()> {
        self.writable()?;
        let landmarks = crop.landmarks;
        let new = self
            .with_image(Bytes::from(crop.png.clone()), move |p, img, t| {
                Ok(p.describe(img, crate::vision::kept::detection(landmarks), true, t)?)
            })
            .await?;
        let embedding = new.embedding.map(|e| e.values).ok_or(Error::NoFace)?;
        self.store_beside(face, embedding, actor).await
    }

    /// Keeps a face's embedding by this service's model beside its own and
    /// makes it searchable.
    async fn store_beside(&self, face: &FaceRecord, embedding: Vec<f32>, actor: &str) -> Result<()> {
        let write = self.writes.clone().lock_owned().await;
        if !self.store.put_embedding(&face.id, &self.model, &embedding, actor).await? {
            return Err(Error::FaceNotFound(face.id.clone()));
        }
        let Some(person_id) = face.person_id.clone() else {
            // An unassigned face: the clusters compare this service's
            // model from the next load (a switch reloads them).
            return Ok(());
        };
        let face_id = face.id.clone();
        let added = self
            .change_gallery(write, move |g| {
                let known = g.remove_face(&face_id);
                g.insert(&face_id, &person_id, &embedding) && !known
            })
            .await?;
        if added {
            let _ = self.faces_other_model.fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |n| n.checked_sub(1),
            );
        }
        Ok(())
    }

    pub async fn delete_face(&self, person_id: &str, face_id: &str, actor: &str) -> Result<()> {
        self.writable()?;
        self.get_person(person_id).await?;
        let write = self.writes.clone().lock_owned().await;
        if !self.store.delete_face(person_id, face_id, actor).await? {
            return Err(Error::FaceNotFound(face_id.into()));
        }
        let face_id = face_id.to_string();
        self.change_gallery(write, move |g| g.remove_face(&face_id)).await?;
        Ok(())
    }
}
