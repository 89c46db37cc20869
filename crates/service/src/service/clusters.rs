//! Clusters of unassigned faces as clients see them (largest first, a page
//! at a time, each with the enrolled person it may be), named as a new or
//! an existing person; persons merged.
use std::collections::HashMap;

use serde::Serialize;

use super::Service;
use super::follow::Touched;
use crate::service::error::{Error, Result};
use crate::store::{AssignTo, Person};

/// A face as a cluster lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaceRef {
    pub id: String,
    pub external_id: Option<String>,
}

/// The enrolled person a cluster may show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NearestPerson {
    pub id: String,
    pub name: String,
    /// Cosine similarity of the cluster's mean to the person's closest face.
    pub similarity: f32,
}

/// One cluster of unassigned faces.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterInfo {
    pub id: String,
    pub size: usize,
    pub faces: Vec<FaceRef>,
    /// The face most similar to the cluster's mean.
    pub representative: FaceRef,
    /// Average cosine similarity between two of its faces (1 for one face).
    pub cohesion: f32,
    /// The enrolled person closest to the cluster, when at or above the 1:N threshold.
    pub nearest_person: Option<NearestPerson>,
}

/// Where a page of clusters starts: after this size and id (largest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterCursor {
    pub size: usize,
    pub id: String,
}

impl ClusterCursor {
    /// As clients pass it back: `"<size>.<id>"`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.size, self.id)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (size, id) = s.split_once('.')?;
        let size = size.parse().ok()?;
        crate::domain::is_valid_id(id).then(|| ClusterCursor { size, id: id.to_string() })
    }
}

/// One page of clusters.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterPage {
    pub clusters: Vec<ClusterInfo>,
    pub next_cursor: Option<String>,
}

/// What naming a cluster did.
#[derive(Debug, Clone, Serialize)]
pub struct Assigned {
    pub person_id: String,
    pub created_person: bool,
    /// The faces moved: those in the cluster when it was named (it may have
    /// changed since it was listed).
    pub faces: Vec<String>,
}

/// What a merge of persons did.
#[derive(Debug, Clone, Serialize)]
pub struct Merged {
    pub person_id: String,
    pub faces_moved: Vec<String>,
    pub persons_deleted: Vec<String>,
}

/// Whom a cluster is named as.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NameAs<'a> {
    New { name: &'a str, metadata: Option<&'a serde_json::Value> },
    Existing(&'a str),
}

impl Service {
    /// Clusters of at least `min_size` faces, largest first, after `after`.
    pub async fn list_clusters(
        &self,
        min_size: usize,
        limit: usize,
        after: Option<&ClusterCursor>,
    ) -> Result<ClusterPage> {
        let (views, more) = {
            let held = self.clusters.read();
            let ranked = held.ranked(min_size.max(1));
            // Largest first, then by id: the page starts after the cursor's place.
            let start = after.map_or(0, |a| {
                ranked.partition_point(|(n, id)| (std::cmp::Reverse(*n), id) <= (std::cmp::Reverse(a.size), &a.id))
            });
            let page: Vec<_> = ranked[start..].iter().take(limit).filter_map(|(_, id)| held.view(id)).collect();
            (page, ranked.len() > start.saturating_add(limit))
        };
        let threshold = self.identify_threshold(self.gallery_read().faces());
        let nearest: Vec<Option<(String, f32)>> = {
            let g = self.gallery_read();
            views
                .iter()
                .map(|v| {
                    g.search(&v.mean, 1)
                        .into_iter()
                        .next()
                        .filter(|c| c.similarity >= threshold)
                        .map(|c| (c.person_id, c.similarity))
                })
                .collect()
        };
        let ids: Vec<&str> = nearest.iter().flatten().map(|(p, _)| p.as_str()).collect();
        let names: HashMap<String, String> =
            if ids.is_empty() { HashMap::new() } else { self.store.person_names(&ids).await? };
        let clusters: Vec<ClusterInfo> = views
            .into_iter()
            .zip(nearest)
            .map(|(v, near)| {
                let faces: Vec<FaceRef> =
                    v.faces.into_iter().map(|(id, external_id)| FaceRef { id, external_id }).collect();
                let representative =
                    faces.iter().find(|f| f.id == v.representative).cloned().unwrap_or_else(|| faces[0].clone());
                ClusterInfo {
                    id: v.id,
                    size: faces.len(),
                    representative,
                    faces,
                    cohesion: v.cohesion,
                    nearest_person: near.map(|(id, similarity)| NearestPerson {
                        name: names.get(&id).cloned().unwrap_or_default(),
                        id,
                        similarity,
                    }),
                }
            })
            .collect();
        let next_cursor = match (more, clusters.last()) {
            (true, Some(c)) => Some(ClusterCursor { size: c.size, id: c.id.clone() }.encode()),
            _ => None,
        };
        Ok(ClusterPage { clusters, next_cursor })
    }

    /// Every face still in the cluster joins the person, in one transaction.
    pub async fn assign_cluster(&self, cluster_id: &str, to: NameAs<'_>, actor: &str) -> Result<Assigned> {
        self.writable()?;
        let write = self.writes.clone().lock_owned().await;
        let new = match to {
            NameAs::New { name, metadata } => Some(Person::new(name, metadata)),
            NameAs::Existing(_) => None,
        };
        let target = match (&new, to) {
            (Some(p), _) => AssignTo::New(p),
            (None, NameAs::Existing(id)) => AssignTo::Existing(id),
            (None, NameAs::New { .. }) => unreachable!("a new person is made above"),
        };
        let faces = self.store.assign_cluster(cluster_id, target, actor).await?;
        if faces.is_empty() {
            return Err(Error::ClusterNotFound(cluster_id.into()));
        }
        let person_id = match to {
            NameAs::Existing(id) => id.to_string(),
            NameAs::New { .. } => new.map(|p| p.id).unwrap_or_default(),
        };
        self.refresh(write, Touched::changed(faces.clone(), Vec::new())).await?;
        Ok(Assigned { person_id, created_person: matches!(to, NameAs::New { .. }), faces })
    }

    /// Moves every face of the persons `from` to `into` and deletes them.
    pub async fn merge_persons(&self, into: &str, from: &[&str], actor: &str) -> Result<Merged> {
        self.writable()?;
        if from.contains(&into) {
            return Err(Error::param("from", "a person cannot be merged into itself"));
        }
        let write = self.writes.clone().lock_owned().await;
        let moved = self.store.merge_persons(into, from, actor).await?;
        let deleted: Vec<String> = from.iter().map(|s| s.to_string()).collect();
        if let Some(f) = &self.follow {
            let mut names = f.names.lock();
            deleted.iter().for_each(|p| drop(names.remove(p)));
        }
        self.refresh(write, Touched::changed(moved.clone(), deleted.clone())).await?;
        Ok(Merged { person_id: into.to_string(), faces_moved: moved, persons_deleted: deleted })
    }
}
