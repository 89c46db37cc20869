//! "Find similar": the stored faces, enrolled or unassigned, most similar
//! to a probe given as a photo, a stored face or an embedding by value; and
//! the kept crops the review page shows.
use bytes::Bytes;
use serde::Serialize;

use super::Service;
use crate::clusters::Clusters;
use crate::domain::FaceChoice;
use crate::domain::similarity::{dot, l2_normalize};
use crate::gallery::Gallery;
use crate::service::error::{Error, Result};
use crate::store::Crop;

/// One stored face found similar.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimilarFace {
    pub face_id: String,
    pub similarity: f32,
    pub person_id: Option<String>,
    pub external_id: Option<String>,
}

/// Which stored faces a search looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Among {
    All,
    Unassigned,
    Enrolled,
}

impl Service {
    /// The `top_k` stored faces most similar to `query` (a unit embedding by
    /// this service's model), enrolled or not: an exact scan.
    pub async fn similar_faces(&self, query: &[f32], top_k: usize, among: Among) -> Result<Vec<SimilarFace>> {
        // An exact scan of every held face: on a blocking thread.
        let (clusters, gallery, query) = (self.clusters.clone(), self.gallery.clone(), query.to_vec());
        let mut found =
            tokio::task::spawn_blocking(move || scan_similar(&clusters.read(), &gallery.read(), &query, top_k, among))
                .await
                .map_err(|e| Error::Internal(anyhow::anyhow!("a search failed: {e}")))?;
        // The gallery holds no external ids: read those of the enrolled faces found.
        for f in found.iter_mut().filter(|f| f.person_id.is_some()) {
            f.external_id = self.store.get_face(&f.face_id).await?.and_then(|r| r.external_id);
        }
        Ok(found)
    }
}

fn scan_similar(held: &Clusters, g: &Gallery, query: &[f32], top_k: usize, among: Among) -> Vec<SimilarFace> {
    let mut out: Vec<SimilarFace> = Vec::new();
    if among != Among::Enrolled {
        out.extend(held.iter().map(|(face_id, values, external)| SimilarFace {
            face_id,
            similarity: dot(query, values),
            person_id: None,
            external_id: external.map(str::to_string),
        }));
    }
    if among != Among::Unassigned {
        out.extend((0..g.faces()).filter_map(|i| g.entry(i)).map(|(face_id, person_id, values)| SimilarFace {
            face_id,
            similarity: dot(query, &values),
            person_id: Some(person_id),
            external_id: None,
        }));
    }
    out.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then_with(|| a.face_id.cmp(&b.face_id)));
    out.truncate(top_k);
    out
}

impl Service {
    /// The embedding of a photo's largest face.
    pub async fn probe_embedding(&self, bytes: Bytes) -> Result<Vec<f32>> {
        let face = self.probe(bytes, FaceChoice::Largest).await?;
        face.embedding.map(|e| e.values).ok_or(Error::NoFace)
    }

    /// A stored face's embedding by this service's model.
    pub async fn face_embedding(&self, id: &str) -> Result<Vec<f32>> {
        let enrolled = self.store.embeddings_of(&[id], &[], &self.model).await?;
        let unassigned = self.store.unassigned_of(&[id], &self.model).await?;
        let (model, values) = match (enrolled.into_iter().next(), unassigned.into_iter().next()) {
            (Some(e), _) => (e.model, e.values),
            (None, Some(e)) => (e.model, e.values),
            (None, None) => return Err(Error::FaceNotFound(id.into())),
        };
        if model != self.model {
            return Err(Error::ModelMismatch(format!(
                "face {id} has no embedding by {}, the model this service compares by (`visage reembed --to` it)",
                self.model
            )));
        }
        Ok(values)
    }

    /// An embedding given by value: by this service's model, of its length,
    /// finite and not zero; normalised.
    pub fn checked_embedding(&self, mut values: Vec<f32>, model: &str) -> Result<Vec<f32>> {
        if model != self.model {
            return Err(Error::ModelMismatch(format!(
                "the embedding is by {model:?}, the gallery compares by {}",
                self.model
            )));
        }
        let dim = self.engine.pipeline().embedder.dim();
        if values.len() != dim {
            return Err(Error::param("embedding", format!("{} values given, {dim} expected", values.len())));
        }
        if values.iter().any(|v| !v.is_finite()) || !l2_normalize(&mut values) {
            return Err(Error::param("embedding", "the values must be finite and not all zero"));
        }
        Ok(values)
    }

    /// A face's kept crop (`--keep-crops`).
    pub async fn face_crop(&self, id: &str) -> Result<Crop> {
        match self.store.face_crop(id).await? {
            Some(c) => Ok(c),
            None if self.store.get_face(id).await?.is_some() => Err(Error::CropNotFound(id.into())),
            None => Err(Error::FaceNotFound(id.into())),
        }
    }
}
