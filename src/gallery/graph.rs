//! A compact HNSW graph (Malkov & Yashunin, 2016) over unit vectors with
//! cosine distance `1 - dot`: contiguous vectors, fixed-width `u32` neighbour
//! lists on layer 0, the neighbour-selection heuristic (keep a candidate only
//! if it is closer to the new point than to every neighbour kept so far), and
//! a per-thread visited list stamped with a generation counter, so searches
//! allocate nothing proportional to the graph.
//!
//! Nodes are never removed here; [`super::hnsw::HnswIndex`] filters dead ones
//! and rebuilds the graph when they pile up.
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};

use super::Score;
use crate::domain::similarity::dot;

/// A node id and its distance to the query; ordered by distance, then id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Near(Reverse<Score>, u32);

impl Near {
    fn new(distance: f32, id: u32) -> Self {
        // Score orders by similarity; Reverse turns that into distance order.
        Near(Reverse(Score(-distance)), id)
    }
    fn distance(&self) -> f32 {
        -(self.0.0.0)
    }
}

thread_local! {
    /// (generation, stamp per node): a node is visited when its stamp equals the generation.
    static VISITED: RefCell<(u32, Vec<u32>)> = const { RefCell::new((0, Vec::new())) };
}

pub struct Graph {
    dim: usize,
    /// Links per node on layers above 0; layer 0 keeps twice as many.
    m: usize,
    ef_construction: usize,
    vectors: Vec<f32>,
    levels: Vec<u8>,
    /// Layer 0: `2m` slots per node, `layer0_len[i]` of them used.
    layer0: Vec<u32>,
    layer0_len: Vec<u8>,
    /// Layers 1..: per node, one list per layer above 0.
    upper: Vec<Vec<Vec<u32>>>,
    entry: Option<u32>,
    max_level: u8,
    /// Draws the layer of each new node (seeded: builds are reproducible).
    rng: SmallRng,
}

impl Graph {
    pub fn new(dim: usize, m: usize, ef_construction: usize) -> Self {
        let m = m.clamp(2, 127);
        Self {
            dim,
            m,
            ef_construction: ef_construction.max(m),
            vectors: Vec::new(),
            levels: Vec::new(),
            layer0: Vec::new(),
            layer0_len: Vec::new(),
            upper: Vec::new(),
            entry: None,
            max_level: 0,
            rng: SmallRng::seed_from_u64(0x853C_49E6_748F_EA9B),
        }
    }

    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    fn vector(&self, i: u32) -> &[f32] {
        let i = i as usize;
        &self.vectors[i * self.dim..(i + 1) * self.dim]
    }

    fn distance(&self, q: &[f32], i: u32) -> f32 {
        1.0 - dot(q, self.vector(i))
    }

    fn neighbours(&self, i: u32, level: usize) -> &[u32] {
        if level == 0 {
            let start = i as usize * 2 * self.m;
            &self.layer0[start..start + self.layer0_len[i as usize] as usize]
        } else {
            &self.upper[i as usize][level - 1]
        }
    }

    fn set_neighbours(&mut self, i: u32, level: usize, list: &[u32]) {
        if level == 0 {
            let start = i as usize * 2 * self.m;
            self.layer0[start..start + list.len()].copy_from_slice(list);
            self.layer0_len[i as usize] = list.len() as u8;
        } else {
            self.upper[i as usize][level - 1] = list.to_vec();
        }
    }

    fn random_level(&mut self) -> u8 {
        // In (0, 1]: never the logarithm of 0.
        let u = 1.0 - self.rng.random::<f64>();
        let ml = 1.0 / (self.m as f64).ln();
        ((-u.ln() * ml).floor() as u32).min(15) as u8
    }

    /// The `ef` nodes nearest `q` on `level` reachable from `entries`,
    /// nearest first. `accept` decides which nodes may be returned (all are
    /// still walked through).
    fn search_layer(
        &self,
        q: &[f32],
        entries: &[Near],
        ef: usize,
        level: usize,
        accept: &dyn Fn(u32) -> bool,
    ) -> Vec<Near> {
        VISITED.with(|v| {
            let mut v = v.borrow_mut();
            let (generation, stamps) = &mut *v;
            if stamps.len() < self.len() {
                stamps.resize(self.len(), 0);
            }
            *generation = generation.wrapping_add(1);
            if *generation == 0 {
                stamps.iter_mut().for_each(|s| *s = 0);
                *generation = 1;
            }
            let generation = *generation;
            // candidates: min-heap by distance; results: max-heap by distance.
            let mut candidates: BinaryHeap<Reverse<Near>> = BinaryHeap::new();
            let mut results: BinaryHeap<Near> = BinaryHeap::new();
            for &e in entries {
                stamps[e.1 as usize] = generation;
                candidates.push(Reverse(e));
                if accept(e.1) {
                    results.push(e);
                }
            }
            while let Some(Reverse(c)) = candidates.pop() {
                if results.len() >= ef && results.peek().is_some_and(|w| c.distance() > w.distance()) {
                    break;
                }
                for &n in self.neighbours(c.1, level) {
                    if stamps[n as usize] == generation {
                        continue;
                    }
                    stamps[n as usize] = generation;
                    let d = self.distance(q, n);
                    if results.len() < ef || results.peek().is_some_and(|w| d < w.distance()) {
                        candidates.push(Reverse(Near::new(d, n)));
                        if accept(n) {
                            results.push(Near::new(d, n));
                            if results.len() > ef {
                                results.pop();
                            }
                        }
                    }
                }
            }
            results.into_sorted_vec()
        })
    }

    /// Greedy descent through the layers above `to_level`.
    fn descend(&self, q: &[f32], to_level: u8) -> Option<Near> {
        let entry = self.entry?;
        let mut best = Near::new(self.distance(q, entry), entry);
        let mut level = self.max_level;
        while level > to_level {
            loop {
                let mut moved = false;
                for &n in self.neighbours(best.1, level as usize) {
                    let d = self.distance(q, n);
                    if d < best.distance() {
                        best = Near::new(d, n);
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
            level -= 1;
        }
        Some(best)
    }

    /// The heuristic of the paper: walk candidates nearest first and keep one
    /// only if it is nearer the base point than to every one already kept;
    /// then fill the free slots with the nearest pruned ones ("keep pruned
    /// connections", which holds recall up on high-dimensional data).
    fn select(&self, candidates: &[Near], max: usize) -> Vec<u32> {
        let mut kept: Vec<Near> = Vec::with_capacity(max);
        let mut pruned = Vec::new();
        for &c in candidates {
            if kept.len() >= max {
                break;
            }
            let v = self.vector(c.1);
            if kept.iter().all(|k| 1.0 - dot(v, self.vector(k.1)) > c.distance()) {
                kept.push(c);
            } else {
                pruned.push(c);
            }
        }
        let free = max - kept.len();
        kept.into_iter().chain(pruned.into_iter().take(free)).map(|k| k.1).collect()
    }

    /// Adds a vector; its id is the number of vectors added before it.
    pub fn insert(&mut self, v: &[f32]) -> u32 {
        assert_eq!(v.len(), self.dim, "vector of the wrong length");
        let id = self.len() as u32;
        let level = self.random_level();
        self.vectors.extend_from_slice(v);
        self.levels.push(level);
        self.layer0.extend(std::iter::repeat_n(0, 2 * self.m));
        self.layer0_len.push(0);
        self.upper.push(vec![Vec::new(); level as usize]);
        let Some(entry) = self.descend(v, level) else {
            self.entry = Some(id);
            self.max_level = level;
            return id;
        };
        // Each layer's search starts from everything the layer above found.
        let mut entries = vec![entry];
        for l in (0..=level.min(self.max_level)).rev() {
            let l = l as usize;
            let found = self.search_layer(v, &entries, self.ef_construction, l, &|n| n != id);
            let max = if l == 0 { 2 * self.m } else { self.m };
            let chosen = self.select(&found, self.m);
            self.set_neighbours(id, l, &chosen);
            for &n in &chosen {
                let mut list: Vec<u32> = self.neighbours(n, l).to_vec();
                list.push(id);
                if list.len() > max {
                    let base = self.vector(n).to_vec();
                    let mut scored: Vec<Near> = list.iter().map(|&k| Near::new(self.distance(&base, k), k)).collect();
                    scored.sort();
                    list = self.select(&scored, max);
                }
                self.set_neighbours(n, l, &list);
            }
            if !found.is_empty() {
                entries = found;
            }
        }
        if level > self.max_level {
            self.max_level = level;
            self.entry = Some(id);
        }
        id
    }

    /// The `k` accepted nodes nearest `q` (searching with a candidate list of
    /// `ef`), nearest first, as (id, distance).
    pub fn search(&self, q: &[f32], k: usize, ef: usize, accept: &dyn Fn(u32) -> bool) -> Vec<(u32, f32)> {
        let Some(entry) = self.descend(q, 0) else { return Vec::new() };
        let mut found = self.search_layer(q, &[entry], ef.max(k), 0, accept);
        found.truncate(k);
        found.into_iter().map(|n| (n.1, n.distance())).collect()
    }

    /// Approximate bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.vectors.capacity() * 4
            + self.levels.capacity()
            + self.layer0.capacity() * 4
            + self.layer0_len.capacity()
            + self.upper.iter().map(|u| 24 + u.iter().map(|l| 24 + l.capacity() * 4).sum::<usize>()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::super::random_unit_vectors as vectors;
    use super::*;
    use crate::domain::similarity::l2_normalize;

    #[test]
    fn finds_every_vector_itself_and_the_true_nearest_of_noisy_probes() {
        let (dim, n) = (24, 4000);
        let data = vectors(n, dim, 5);
        let mut g = Graph::new(dim, 16, 100);
        for v in &data {
            g.insert(v);
        }
        assert_eq!(g.len(), n);
        for (i, v) in data.iter().enumerate().step_by(37) {
            let r = g.search(v, 1, 32, &|_| true);
            assert_eq!(r[0].0, i as u32);
            assert!(r[0].1.abs() < 1e-5);
        }
        // Against brute force on probes near stored vectors.
        let noise = vectors(200, dim, 9);
        let mut hits = 0;
        for (k, e) in noise.iter().enumerate() {
            let mut q: Vec<f32> = data[k * 19].iter().zip(e).map(|(a, b)| a + 0.8 * b).collect();
            l2_normalize(&mut q);
            let truth =
                (0..n).min_by(|&a, &b| (1.0 - dot(&q, &data[a])).total_cmp(&(1.0 - dot(&q, &data[b])))).unwrap();
            let r = g.search(&q, 3, 64, &|_| true);
            assert!(r.windows(2).all(|w| w[0].1 <= w[1].1), "nearest first");
            hits += usize::from(r[0].0 == truth as u32);
        }
        assert!(hits >= 198, "recall@1 {hits}/200");
    }

    #[test]
    fn rejected_nodes_are_walked_through_but_never_returned() {
        let data = vectors(2000, 16, 21);
        let mut g = Graph::new(16, 8, 64);
        for v in &data {
            g.insert(v);
        }
        let even = |i: u32| i.is_multiple_of(2);
        for (i, v) in data.iter().enumerate().take(50) {
            let r = g.search(v, 5, 40, &even);
            assert_eq!(r.len(), 5);
            assert!(r.iter().all(|(id, _)| id.is_multiple_of(2)));
            if i % 2 == 0 {
                assert_eq!(r[0].0, i as u32);
            }
        }
        assert!(Graph::new(16, 8, 64).search(&data[0], 3, 10, &|_| true).is_empty());
    }
}
