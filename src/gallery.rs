//! The in-memory gallery that 1:N identification and 1:1 verification search:
//! every enrolled embedding of the loaded embedder, kept consistent with the
//! store by the service layer. Faces and persons are compact integer
//! [`Slot`]s, which the service maps to and from its ids; the index knows
//! nothing of ids. Exact search over contiguous f32 rows with SIMD dot
//! products, split over cores for large galleries; the [`Index`] trait lets
//! an approximate index replace it.
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::domain::similarity::dot;

mod graph;
mod hnsw;
pub use hnsw::{HnswIndex, HnswParams};

/// The 1:N index and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct IndexConfig {
    pub kind: IndexKind,
    pub hnsw: HnswParams,
}

/// Which index identification searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexKind {
    /// Exact search over every embedding (default; <= 20 ms at 1M on 2 cores).
    #[default]
    Exact,
    /// Approximate (HNSW graph) for larger galleries; slower start-up.
    Hnsw,
}

/// A face's or a person's place in the gallery: a small integer, reused
/// once freed, that the service assigns to each id.
pub type Slot = u32;

/// One person's best match for a probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub person: Slot,
    /// The enrolled face that matched best.
    pub face: Slot,
    pub similarity: f32,
}

/// A searchable set of unit embeddings, each tied to a face and a person.
pub trait Index: Send + Sync {
    /// Adds a face; false when the face is already present or the
    /// embedding has the wrong length.
    fn insert(&mut self, face: Slot, person: Slot, embedding: &[f32]) -> bool;
    fn remove_face(&mut self, face: Slot) -> bool;
    /// Removes every face of the person; returns them.
    fn remove_person(&mut self, person: Slot) -> Vec<Slot>;
    /// The `top_k` persons most similar to `query` (each by its best face), best first.
    fn search(&self, query: &[f32], top_k: usize) -> Vec<Hit>;
    /// The best face of one person and how many faces were compared.
    fn best_of_person(&self, query: &[f32], person: Slot) -> Option<(Hit, usize)>;
    fn faces(&self) -> usize;
    fn persons(&self) -> usize;
    /// The `i`-th face held, for `i` below [`Index::faces`] (in no
    /// particular order, which changes as faces come and go): its slot, its
    /// person's and its embedding.
    fn entry(&self, i: usize) -> Option<(Slot, Slot, &[f32])>;
    /// Bytes held, approximately (for the memory report).
    fn memory_bytes(&self) -> usize;
    /// The index's name, for /v1/info.
    fn kind(&self) -> &'static str {
        "exact"
    }
    /// Whether removals have left the index slower or less accurate than a
    /// fresh build would be (the HNSW graph's dead entries).
    fn wants_rebuild(&self) -> bool {
        false
    }
    /// A fresh index over the same live faces, built without changing this
    /// one (searches go on meanwhile), for the caller to swap in.
    fn rebuilt(&self) -> Option<Box<dyn Index>> {
        None
    }
}

/// Total order on similarity for the heaps (NaN lowest).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Score(f32);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |x: f32| if x.is_nan() { f32::NEG_INFINITY } else { x };
        key(self.0).total_cmp(&key(other.0))
    }
}

/// Rows per thread below which splitting the scan does not pay.
const PARALLEL_MIN_ROWS: usize = 32_768;

/// `face_row` of a face slot that holds no face.
const NO_ROW: u32 = u32::MAX;

/// Brute-force cosine search over a contiguous row-major matrix.
#[derive(Default, Clone)]
pub struct ExactIndex {
    dim: usize,
    rows: Vec<f32>,
    row_face: Vec<Slot>,
    row_person: Vec<Slot>,
    /// By face slot: its row, or [`NO_ROW`].
    face_row: Vec<u32>,
    /// By person slot: their rows.
    person_rows: Vec<Vec<u32>>,
    /// Persons with at least one row.
    persons: usize,
    /// Upper bound on any person's face count (bounds the search depth).
    max_faces_per_person: usize,
    threads: usize,
}

impl ExactIndex {
    pub fn new(dim: usize) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self { dim, threads, ..Self::default() }
    }

    /// Overrides how many threads a large search may use.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.rows[i * self.dim..(i + 1) * self.dim]
    }

    /// The best `depth` rows of `range`, as a min-heap.
    fn scan(&self, query: &[f32], range: std::ops::Range<usize>, depth: usize) -> BinaryHeap<Reverse<(Score, u32)>> {
        let mut heap = BinaryHeap::with_capacity(depth + 1);
        for i in range {
            let s = Score(dot(query, self.row(i)));
            if heap.len() < depth {
                heap.push(Reverse((s, i as u32)));
            } else if heap.peek().is_some_and(|Reverse((min, _))| s > *min) {
                heap.pop();
                heap.push(Reverse((s, i as u32)));
            }
        }
        heap
    }

    /// The row of a face slot, when it holds a face.
    fn row_of(&self, face: Slot) -> Option<u32> {
        self.face_row.get(face as usize).copied().filter(|&r| r != NO_ROW)
    }

    fn hit(&self, row: u32, similarity: f32) -> Hit {
        let r = row as usize;
        Hit { person: self.row_person[r], face: self.row_face[r], similarity }
    }
}

impl Index for ExactIndex {
    fn insert(&mut self, face: Slot, person: Slot, embedding: &[f32]) -> bool {
        if embedding.len() != self.dim || self.row_of(face).is_some() {
            return false;
        }
        let row = self.row_face.len() as u32;
        if self.face_row.len() <= face as usize {
            self.face_row.resize(face as usize + 1, NO_ROW);
        }
        if self.person_rows.len() <= person as usize {
            self.person_rows.resize_with(person as usize + 1, Vec::new);
        }
        self.rows.extend_from_slice(embedding);
        self.row_face.push(face);
        self.row_person.push(person);
        self.face_row[face as usize] = row;
        let rows = &mut self.person_rows[person as usize];
        if rows.is_empty() {
            self.persons += 1;
        }
        rows.push(row);
        self.max_faces_per_person = self.max_faces_per_person.max(rows.len());
        true
    }

    /// Removes the face, moving the last row into its place.
    fn remove_face(&mut self, face: Slot) -> bool {
        let Some(row) = self.row_of(face) else { return false };
        self.face_row[face as usize] = NO_ROW;
        let (i, last) = (row as usize, self.row_face.len() - 1);
        let person = self.row_person[i] as usize;
        self.person_rows[person].retain(|&r| r != row);
        if i != last {
            // Move the last row into the hole and repoint its owners.
            self.rows.copy_within(last * self.dim..(last + 1) * self.dim, i * self.dim);
            self.row_face[i] = self.row_face[last];
            self.row_person[i] = self.row_person[last];
            self.face_row[self.row_face[i] as usize] = row;
            for r in &mut self.person_rows[self.row_person[i] as usize] {
                if *r == last as u32 {
                    *r = row;
                }
            }
        }
        self.rows.truncate(last * self.dim);
        self.row_face.pop();
        self.row_person.pop();
        if self.person_rows[person].is_empty() {
            self.persons -= 1;
        }
        true
    }

    fn remove_person(&mut self, person: Slot) -> Vec<Slot> {
        let Some(rows) = self.person_rows.get(person as usize) else { return Vec::new() };
        let faces: Vec<Slot> = rows.iter().map(|&r| self.row_face[r as usize]).collect();
        faces.into_iter().filter(|&f| self.remove_face(f)).collect()
    }

    fn search(&self, query: &[f32], top_k: usize) -> Vec<Hit> {
        let n = self.row_face.len();
        if query.len() != self.dim || top_k == 0 || n == 0 {
            return Vec::new();
        }
        // The k-th best person's best row is among the top k * F rows, where
        // F bounds any person's face count.
        let depth = top_k.saturating_mul(self.max_faces_per_person.max(1)).min(n);
        let threads = self.threads.min(n / PARALLEL_MIN_ROWS).max(1);
        let heaps: Vec<BinaryHeap<Reverse<(Score, u32)>>> = if threads == 1 {
            vec![self.scan(query, 0..n, depth)]
        } else {
            let chunk = n.div_ceil(threads);
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| s.spawn(move || self.scan(query, t * chunk..((t + 1) * chunk).min(n), depth)))
                    .collect();
                handles.into_iter().filter_map(|h| h.join().ok()).collect()
            })
        };
        let mut rows: Vec<(Score, u32)> = heaps.into_iter().flat_map(|h| h.into_iter().map(|Reverse(x)| x)).collect();
        rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut seen = std::collections::HashSet::new();
        rows.into_iter()
            .filter(|(_, r)| seen.insert(self.row_person[*r as usize]))
            .take(top_k)
            .map(|(s, r)| self.hit(r, s.0))
            .collect()
    }

    fn best_of_person(&self, query: &[f32], person: Slot) -> Option<(Hit, usize)> {
        let rows = self.person_rows.get(person as usize)?;
        let best = rows
            .iter()
            .map(|&r| (Score(dot(query, self.row(r as usize))), r))
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))?;
        Some((self.hit(best.1, best.0.0), rows.len()))
    }

    fn faces(&self) -> usize {
        self.row_face.len()
    }

    fn entry(&self, i: usize) -> Option<(Slot, Slot, &[f32])> {
        (i < self.row_face.len()).then(|| (self.row_face[i], self.row_person[i], self.row(i)))
    }

    fn persons(&self) -> usize {
        self.persons
    }

    fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        self.rows.capacity() * size_of::<f32>()
            + (self.row_face.capacity() + self.row_person.capacity() + self.face_row.capacity()) * size_of::<u32>()
            + self.person_rows.iter().map(|r| size_of::<Vec<u32>>() + r.capacity() * size_of::<u32>()).sum::<usize>()
    }
}

/// Deterministic pseudo-random unit vectors for the index tests.
#[cfg(test)]
fn random_unit_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    use rand::{Rng as _, SeedableRng as _};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut v: Vec<f32> = (0..dim).map(|_| rng.random::<f32>() - 0.5).collect();
            crate::domain::similarity::l2_normalize(&mut v);
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = dot(v, v).sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn search_returns_each_person_once_by_their_best_face() {
        let (alice, bob, carol) = (0, 1, 2);
        let mut g = ExactIndex::new(2);
        assert!(g.insert(1, alice, &unit(&[1.0, 0.0])));
        assert!(g.insert(2, alice, &unit(&[0.0, 1.0])));
        assert!(g.insert(3, bob, &unit(&[1.0, 1.0])));
        let r = g.search(&unit(&[0.0, 1.0]), 10);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].person, r[0].face), (alice, 2));
        assert!((r[0].similarity - 1.0).abs() < 1e-6);
        assert_eq!(r[1].person, bob);
        assert_eq!(g.search(&unit(&[0.0, 1.0]), 1).len(), 1);
        let (best, n) = g.best_of_person(&unit(&[1.0, 0.1]), alice).unwrap();
        assert_eq!((best.face, n), (1, 2));
        assert!(g.best_of_person(&unit(&[1.0, 0.1]), carol).is_none());
        assert!(g.best_of_person(&unit(&[1.0, 0.1]), 99).is_none());
    }

    #[test]
    fn removals_keep_rows_and_ids_consistent() {
        let (alice, bob, carol) = (10, 11, 12);
        let mut g = ExactIndex::new(2);
        g.insert(1, alice, &unit(&[1.0, 0.0]));
        g.insert(2, bob, &unit(&[0.0, 1.0]));
        g.insert(3, carol, &unit(&[-1.0, 0.0]));
        assert!(g.remove_face(1));
        assert!(!g.remove_face(1));
        // carol's row moved into row 0 and must still be found as carol
        let r = g.search(&unit(&[-1.0, 0.0]), 1);
        assert_eq!((r[0].person, r[0].face), (carol, 3));
        assert!((r[0].similarity - 1.0).abs() < 1e-6);
        assert_eq!((g.faces(), g.persons()), (2, 2));
        g.insert(4, bob, &unit(&[0.5, 0.5]));
        let mut removed = g.remove_person(bob);
        removed.sort();
        assert_eq!(removed, [2, 4]);
        assert_eq!((g.faces(), g.persons()), (1, 1));
        assert!(g.search(&unit(&[0.0, 1.0]), 5).iter().all(|c| c.person != bob));
        // A freed face slot is reused, for another person, without mixing identities.
        g.insert(2, alice, &unit(&[0.0, 1.0]));
        assert_eq!(g.search(&unit(&[0.0, 1.0]), 1)[0], Hit { person: alice, face: 2, similarity: 1.0 });
        assert_eq!(g.best_of_person(&unit(&[-1.0, 0.0]), carol).unwrap().1, 1);
        // Wrong dimension and duplicates are refused.
        assert!(!g.insert(6, alice, &[1.0]));
        assert!(!g.insert(3, alice, &unit(&[1.0, 0.0])));
        assert_eq!(g.faces(), 2);
    }

    #[test]
    fn parallel_search_equals_a_naive_scan() {
        // Enough rows to split the scan; persons with 1-3 faces.
        let dim = 16;
        use rand::{Rng as _, SeedableRng as _};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(0x1234_5678_9abc_def0);
        let mut next = || rng.random::<f32>() - 0.5;
        let mut g = ExactIndex::new(dim).with_threads(2);
        let mut all = Vec::new();
        for f in 0..(2 * PARALLEL_MIN_ROWS + 100) as u32 {
            let person = f / 3 + (f % 2);
            let v = unit(&(0..dim).map(|_| next()).collect::<Vec<_>>());
            assert!(g.insert(f, person, &v));
            all.push((person, v));
        }
        for _ in 0..3 {
            let q = unit(&(0..dim).map(|_| next()).collect::<Vec<_>>());
            let mut best: std::collections::HashMap<u32, f32> = std::collections::HashMap::new();
            for (p, v) in &all {
                let s = dot(&q, v);
                let e = best.entry(*p).or_insert(f32::NEG_INFINITY);
                *e = e.max(s);
            }
            let mut naive: Vec<(u32, f32)> = best.into_iter().collect();
            naive.sort_by(|a, b| b.1.total_cmp(&a.1));
            let got = g.search(&q, 10);
            assert_eq!(got.len(), 10);
            for (c, (p, s)) in got.iter().zip(&naive) {
                assert_eq!(c.person, *p);
                assert!((c.similarity - s).abs() < 1e-6);
            }
        }
    }
}
