//! An approximate index for large galleries: an HNSW graph ([`Graph`]) over
//! the embeddings, beside the exact index that stays the source of truth for
//! ids, persons, 1:1 verification and similarities.
//!
//! - Search asks the graph for the best `top_k x F` faces (F bounds any
//!   person's face count, as in exact search), rescores them exactly and
//!   keeps each person's best. Below [`HnswParams::min_faces`] faces the exact
//!   scan is used instead: it is faster there, and exact.
//! - Removal marks the face dead (filtered out of graph searches); once dead
//!   entries pass a quarter of the live ones the index asks to be rebuilt
//!   ([`Index::wants_rebuild`]), and its owner builds a fresh copy beside it.
//! - Start-up inserts every loaded embedding into the graph (one thread),
//!   which takes much longer than loading the exact index: see the README's
//!   1:N figures.
use std::collections::{HashMap, HashSet};

use super::graph::Graph;
use super::{ExactIndex, Hit, Index, Score, Slot};
use crate::domain::similarity::dot;

/// HNSW construction and search parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HnswParams {
    /// Links per node and layer (M).
    pub connections: usize,
    /// Candidate list size while building.
    pub ef_construction: usize,
    /// Candidate list size while searching (raised to the number of faces asked for).
    pub ef_search: usize,
    /// Galleries smaller than this are searched exactly.
    pub min_faces: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self { connections: 16, ef_construction: 200, ef_search: 400, min_faces: 20_000 }
    }
}

pub struct HnswIndex {
    exact: ExactIndex,
    params: HnswParams,
    graph: Graph,
    /// Graph data id → face slot; `alive[id]` is false once removed.
    data_face: Vec<Slot>,
    alive: Vec<bool>,
    face_data: HashMap<Slot, usize>,
    dead: usize,
}

fn new_graph(dim: usize, params: &HnswParams) -> Graph {
    Graph::new(dim, params.connections, params.ef_construction)
}

impl HnswIndex {
    pub fn new(dim: usize, params: HnswParams) -> Self {
        Self {
            exact: ExactIndex::new(dim),
            graph: new_graph(dim, &params),
            params,
            data_face: Vec::new(),
            alive: Vec::new(),
            face_data: HashMap::new(),
            dead: 0,
        }
    }

    /// Builds the index over everything in `exact`.
    pub fn from_exact(exact: ExactIndex, params: HnswParams) -> Self {
        let mut index = Self {
            graph: new_graph(exact.dim, &params),
            exact,
            params,
            data_face: Vec::new(),
            alive: Vec::new(),
            face_data: HashMap::new(),
            dead: 0,
        };
        index.rebuild();
        index
    }

    /// Re-inserts every live face into a fresh graph.
    fn rebuild(&mut self) {
        let n = self.exact.faces();
        self.graph = new_graph(self.exact.dim, &self.params);
        self.data_face = self.exact.row_face.clone();
        self.alive = vec![true; n];
        self.face_data = self.data_face.iter().enumerate().map(|(i, &f)| (f, i)).collect();
        self.dead = 0;
        for i in 0..n {
            self.graph.insert(self.exact.row(i));
        }
    }

    fn mark_dead(&mut self, face: Slot) {
        if let Some(i) = self.face_data.remove(&face) {
            self.alive[i] = false;
            self.dead += 1;
        }
    }

    /// A fresh index over the live faces, this one unchanged.
    pub fn rebuilt_copy(&self) -> Self {
        Self::from_exact(self.exact.clone(), self.params)
    }
}

impl Index for HnswIndex {
    fn insert(&mut self, face: Slot, person: Slot, embedding: &[f32]) -> bool {
        if !self.exact.insert(face, person, embedding) {
            return false;
        }
        let i = self.data_face.len();
        self.data_face.push(face);
        self.alive.push(true);
        self.face_data.insert(face, i);
        let id = self.graph.insert(embedding);
        debug_assert_eq!(id as usize, i);
        true
    }

    fn remove_face(&mut self, face: Slot) -> bool {
        if !self.exact.remove_face(face) {
            return false;
        }
        self.mark_dead(face);
        true
    }

    fn remove_person(&mut self, person: Slot) -> Vec<Slot> {
        let removed = self.exact.remove_person(person);
        for &f in &removed {
            self.mark_dead(f);
        }
        removed
    }

    fn search(&self, query: &[f32], top_k: usize) -> Vec<Hit> {
        let n = self.exact.faces();
        if n < self.params.min_faces || query.len() != self.exact.dim {
            return self.exact.search(query, top_k);
        }
        if top_k == 0 {
            return Vec::new();
        }
        let depth = top_k.saturating_mul(self.exact.max_faces_per_person.max(1)).min(n);
        let ef = self.params.ef_search.max(depth);
        let alive = |id: u32| self.alive.get(id as usize).copied().unwrap_or(false);
        let found = self.graph.search(query, depth, ef, &alive);
        // Rescore exactly from the exact index's rows; keep each person's best.
        let mut scored: Vec<(Score, u32)> = found
            .iter()
            .filter_map(|&(id, _)| {
                let face = *self.data_face.get(id as usize)?;
                let row = self.exact.row_of(face)?;
                Some((Score(dot(query, self.exact.row(row as usize))), row))
            })
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut seen = HashSet::new();
        scored
            .into_iter()
            .filter(|(_, r)| seen.insert(self.exact.row_person[*r as usize]))
            .take(top_k)
            .map(|(s, r)| self.exact.hit(r, s.0))
            .collect()
    }

    fn best_of_person(&self, query: &[f32], person: Slot) -> Option<(Hit, usize)> {
        self.exact.best_of_person(query, person)
    }

    fn entry(&self, i: usize) -> Option<(Slot, Slot, &[f32])> {
        self.exact.entry(i)
    }

    fn faces(&self) -> usize {
        self.exact.faces()
    }

    fn persons(&self) -> usize {
        self.exact.persons()
    }

    fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        self.exact.memory_bytes()
            + self.graph.memory_bytes()
            + self.data_face.capacity() * (size_of::<Slot>() + 1)
            + self.face_data.capacity() * (size_of::<Slot>() + size_of::<usize>() + 1)
    }

    fn kind(&self) -> &'static str {
        "hnsw"
    }

    fn wants_rebuild(&self) -> bool {
        self.dead > 1024 && self.dead * 4 > self.face_data.len()
    }

    fn rebuilt(&self) -> Option<Box<dyn Index>> {
        Some(Box::new(self.rebuilt_copy()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::random_unit_vectors as vectors;
    use super::*;

    /// A probe near `v`: v plus noise, renormalised (cosine ~0.7 to v).
    fn near(v: &[f32], noise: &[f32]) -> Vec<f32> {
        let mut q: Vec<f32> = v.iter().zip(noise).map(|(a, b)| a + b).collect();
        crate::domain::similarity::l2_normalize(&mut q);
        q
    }

    #[test]
    fn finds_what_exact_search_finds_and_forgets_removed_faces() {
        let (dim, n) = (32, 3000);
        let params = HnswParams { min_faces: 0, ..HnswParams::default() };
        let data = vectors(n, dim, 7);
        let mut exact = ExactIndex::new(dim);
        for (i, v) in data.iter().enumerate() {
            // Persons with two faces each.
            assert!(exact.insert(i as u32 + 1, i as u32 / 2, v));
        }
        let mut g = HnswIndex::from_exact(exact, params);
        let noise = vectors(200, dim, 11);
        let mut agree = 0;
        for (k, e) in noise.iter().enumerate() {
            let q = near(&data[k * 13], e);
            let (a, b) = (g.search(&q, 3), g.exact.search(&q, 3));
            assert_eq!(a.len(), 3);
            agree += usize::from(a[0] == b[0]);
            // Similarities are exact rescoring, never the graph's estimate.
            for c in &a {
                let face = c.face as usize - 1;
                assert!((c.similarity - dot(&q, &data[face])).abs() < 1e-6);
            }
        }
        assert!(agree >= 198, "recall@1 {agree}/200");
        // Inserted after the build: found. Removed: never returned.
        let extra = vectors(1, dim, 99).remove(0);
        assert!(g.insert(9_999, 42_000, &extra));
        // A duplicate embedding (distance 0, or a hair below through rounding) is fine.
        assert!(g.insert(9_998, 43_000, &extra));
        assert!(g.remove_face(9_998));
        assert_eq!(g.search(&extra, 1)[0].face, 9_999);
        assert!(g.remove_face(9_999));
        assert!(g.search(&extra, 5).iter().all(|c| c.face != 9_999));
        let person = g.search(&data[0], 1)[0].person;
        assert_eq!(g.remove_person(person).len(), 2);
        assert!(g.search(&data[0], 5).iter().all(|c| c.person != person));
        assert_eq!((g.faces(), g.persons()), (n - 2, n / 2 - 1));
    }

    #[test]
    fn many_removals_rebuild_the_graph() {
        let (dim, n) = (16, 6000);
        let params = HnswParams { min_faces: 0, ..HnswParams::default() };
        let data = vectors(n, dim, 3);
        let mut g = HnswIndex::new(dim, params);
        for (i, v) in data.iter().enumerate() {
            assert!(g.insert(i as u32 + 1, i as u32 + 1, v));
        }
        for i in 0..2000 {
            assert!(g.remove_face(i as u32 + 1));
        }
        // 2000 dead > 1024 and > a quarter of 4000 live: a rebuild is asked
        // for, and the rebuilt copy has nothing dead left.
        assert!(g.wants_rebuild());
        let before = g.search(&data[4000], 3);
        let g = g.rebuilt_copy();
        assert!(!g.wants_rebuild());
        assert_eq!((g.dead, g.faces()), (0, 4000));
        assert_eq!(g.search(&data[4000], 3), before);
        assert_eq!(g.data_face.len(), g.face_data.len() + g.dead);
        for v in data.iter().skip(4000).step_by(97) {
            assert!((g.search(v, 1)[0].similarity - 1.0).abs() < 1e-5);
        }
    }
}
