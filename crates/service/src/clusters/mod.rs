//! Faces nobody has named yet, grouped into clusters that each show one
//! person: incremental average linkage. A cluster is summarised by the sum
//! of its unit embeddings, so the average similarity between all pairs of
//! faces of two clusters is `sum_a · sum_b / (n_a n_b)` (and between a face
//! and a cluster `x · sum / n`), computed in one dot product. A face joins
//! the cluster it is most similar to on average when that average reaches
//! the threshold, else starts one; then the grown cluster absorbs every
//! cluster whose average similarity to it reaches the threshold, as
//! agglomerative average linkage (UPGMA) would, and a face whose average
//! similarity to the rest of its cluster fell below the threshold leaves it
//! (arriving again elsewhere). Chosen by measurement on LFW View 1
//! (bench/clustering): UPGMA's precision without its full recomputation.
//!
//! The cluster each face belongs to is stored with it (the service writes
//! the [`Placement`] this module plans, then applies it here): every replica
//! and every restart sees the same clusters. Ids are held as the 128-bit
//! numbers they spell.
mod plan;

use std::collections::HashMap;

pub use plan::Placement;

use crate::domain::similarity::dot;
use crate::domain::{id_bits, id_from_bits};

/// The average similarity at or above which a face joins a cluster and two
/// clusters merge, when the embedder states none: tuned on LFW View 1's
/// DevTrain for the fused embedder (bench/clustering/README.md).
pub const DEFAULT_JOIN: f32 = 0.75;

/// One unassigned face as held.
#[derive(Debug, Clone)]
struct Held {
    cluster: u32,
    values: Box<[f32]>,
    external_id: Option<Box<str>>,
}

/// Clusters live in slots; a freed slot is reused.
#[derive(Debug, Default)]
pub struct Clusters {
    dim: usize,
    join: f32,
    faces: HashMap<u128, Held>,
    /// Per slot: the cluster's id (0: free), its members, and its sum (in `sums`).
    ids: Vec<u128>,
    members: Vec<Vec<u128>>,
    sums: Vec<f32>,
    by_id: HashMap<u128, u32>,
    free: Vec<u32>,
}

/// A cluster as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterView {
    pub id: String,
    /// Its faces' ids and external ids, in id (arrival) order.
    pub faces: Vec<(String, Option<String>)>,
    /// The face most similar to the cluster's mean.
    pub representative: String,
    /// The average similarity between two of its faces (1 for one face).
    pub cohesion: f32,
    /// The mean of its embeddings, normalised (to search the gallery with).
    pub mean: Vec<f32>,
}

impl Clusters {
    /// No clusters, for embeddings of `dim` values, joining at `join`.
    pub fn new(dim: usize, join: f32) -> Self {
        Self { dim, join, ..Self::default() }
    }

    /// Unassigned faces held.
    pub fn faces(&self) -> usize {
        self.faces.len()
    }

    /// Clusters held (one face or more).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    fn sum(&self, slot: u32) -> &[f32] {
        &self.sums[slot as usize * self.dim..(slot as usize + 1) * self.dim]
    }

    /// The slot of cluster `id`, made when new.
    fn slot_for(&mut self, id: u128) -> u32 {
        if let Some(&s) = self.by_id.get(&id) {
            return s;
        }
        let s = match self.free.pop() {
            Some(s) => s,
            None => {
                self.ids.push(0);
                self.members.push(Vec::new());
                self.sums.resize(self.sums.len() + self.dim, 0.0);
                (self.ids.len() - 1) as u32
            }
        };
        self.ids[s as usize] = id;
        self.by_id.insert(id, s);
        s
    }

    fn free_slot(&mut self, s: u32) {
        let id = std::mem::take(&mut self.ids[s as usize]);
        self.by_id.remove(&id);
        self.members[s as usize] = Vec::new();
        self.sums[s as usize * self.dim..(s as usize + 1) * self.dim].fill(0.0);
        self.free.push(s);
    }

    fn add_to(&mut self, s: u32, values: &[f32], sign: f32) {
        let d = self.dim;
        for (t, v) in self.sums[s as usize * d..(s as usize + 1) * d].iter_mut().zip(values) {
            *t += sign * v;
        }
    }

    /// Holds a face in cluster `cluster` (replacing what was held for it);
    /// false when an id is not one of ours or the embedding's length is wrong.
    pub fn insert(&mut self, face_id: &str, cluster_id: &str, values: &[f32], external_id: Option<&str>) -> bool {
        let (Some(face), Some(cluster)) = (id_bits(face_id), id_bits(cluster_id)) else { return false };
        if values.len() != self.dim || cluster == 0 {
            return false;
        }
        self.remove_bits(face);
        let s = self.slot_for(cluster);
        self.add_to(s, values, 1.0);
        let m = &mut self.members[s as usize];
        let at = m.partition_point(|f| *f < face);
        m.insert(at, face);
        let held = Held { cluster: s, values: values.into(), external_id: external_id.map(Into::into) };
        self.faces.insert(face, held);
        true
    }

    /// Stops holding a face; false when it was not held.
    pub fn remove(&mut self, face_id: &str) -> bool {
        id_bits(face_id).is_some_and(|f| self.remove_bits(f))
    }

    fn remove_bits(&mut self, face: u128) -> bool {
        let Some(held) = self.faces.remove(&face) else { return false };
        let s = held.cluster;
        self.add_to(s, &held.values, -1.0);
        self.members[s as usize].retain(|f| *f != face);
        if self.members[s as usize].is_empty() {
            self.free_slot(s);
        }
        true
    }

    /// Moves every face of cluster `from` into `into` (made when new).
    pub fn relabel(&mut self, from: &str, into: &str) {
        let (Some(from), Some(into)) = (id_bits(from), id_bits(into)) else { return };
        let Some(&f) = self.by_id.get(&from) else { return };
        if from == into {
            return;
        }
        let t = self.slot_for(into);
        let moved = std::mem::take(&mut self.members[f as usize]);
        let sum = self.sum(f).to_vec();
        self.add_to(t, &sum, 1.0);
        for face in &moved {
            if let Some(h) = self.faces.get_mut(face) {
                h.cluster = t;
            }
        }
        let m = &mut self.members[t as usize];
        m.extend(moved);
        m.sort_unstable();
        self.free_slot(f);
    }

    /// Moves one held face into cluster `to` (made when new).
    pub fn regroup(&mut self, face_id: &str, to: &str) {
        let Some(held) = id_bits(face_id).and_then(|f| self.faces.get(&f)) else { return };
        let (values, external_id) = (held.values.clone(), held.external_id.clone());
        self.insert(face_id, to, &values, external_id.as_deref());
    }

    /// The faces of a cluster (empty when there is no such cluster).
    pub fn faces_of(&self, cluster_id: &str) -> Vec<String> {
        let slot = id_bits(cluster_id).and_then(|c| self.by_id.get(&c));
        slot.map(|&s| self.members[s as usize].iter().map(|f| id_from_bits(*f)).collect()).unwrap_or_default()
    }

    /// The cluster a face is in, when it is held.
    pub fn cluster_of(&self, face_id: &str) -> Option<String> {
        let held = self.faces.get(&id_bits(face_id)?)?;
        Some(id_from_bits(self.ids[held.cluster as usize]))
    }

    /// Every held face with its embedding (for "find similar").
    pub fn iter(&self) -> impl Iterator<Item = (String, &[f32], Option<&str>)> {
        self.faces.iter().map(|(f, h)| (id_from_bits(*f), &*h.values, h.external_id.as_deref()))
    }

    /// Every cluster of at least `min_size` faces as `(size, id)`, largest
    /// first, then by id.
    pub fn ranked(&self, min_size: usize) -> Vec<(usize, String)> {
        let mut out: Vec<(usize, u128)> = (0..self.ids.len())
            .filter(|&s| self.ids[s] != 0 && self.members[s].len() >= min_size)
            .map(|s| (self.members[s].len(), self.ids[s]))
            .collect();
        out.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        out.into_iter().map(|(n, id)| (n, id_from_bits(id))).collect()
    }

    /// One cluster, as listed; None when there is no such cluster.
    pub fn view(&self, cluster_id: &str) -> Option<ClusterView> {
        let s = *self.by_id.get(&id_bits(cluster_id)?)?;
        let (members, sum) = (&self.members[s as usize], self.sum(s));
        let n = members.len() as f32;
        let square = dot(sum, sum);
        let cohesion = if members.len() > 1 { (square - n) / (n * (n - 1.0)) } else { 1.0 };
        let best = members.iter().max_by(|a, b| {
            let (x, y) = (&self.faces[*a].values, &self.faces[*b].values);
            dot(x, sum).total_cmp(&dot(y, sum))
        })?;
        let norm = square.sqrt().max(f32::MIN_POSITIVE);
        Some(ClusterView {
            id: cluster_id.to_string(),
            faces: members
                .iter()
                .map(|f| (id_from_bits(*f), self.faces[f].external_id.as_deref().map(str::to_string)))
                .collect(),
            representative: id_from_bits(*best),
            cohesion,
            mean: sum.iter().map(|v| v / norm).collect(),
        })
    }

    /// Bytes held, approximately (for the memory report).
    pub fn memory_bytes(&self) -> usize {
        let per_face = self.dim * 4 + std::mem::size_of::<(u128, Held)>() + 16 + 8;
        let external: usize = self.faces.values().filter_map(|h| h.external_id.as_ref().map(|e| e.len())).sum();
        self.faces.len() * per_face + external + self.sums.len() * 4 + self.ids.len() * (16 + 24 + 24)
    }
}

#[cfg(test)]
mod tests;
