//! Exact search: every row compared with the query, the scan split over
//! cores for large galleries, over f32 rows or i8 codes ([`Rows`]).
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::rows::{F32Rows, I8Rows, Rows};
use super::{Hit, Index, Score, Slot};

/// Rows per thread below which splitting the scan does not pay.
const PARALLEL_MIN_ROWS: usize = 32_768;

/// Rows the scan over i8 codes keeps at least for precise scoring, so that
/// the codes' rounding cannot push the true best out of the top.
const RESCORE_MIN: usize = 32;

/// `face_row` of a face slot that holds no face.
const NO_ROW: u32 = u32::MAX;

/// Brute-force cosine search over rows stored as `R`.
#[derive(Clone)]
pub struct ExactIndex<R = F32Rows> {
    dim: usize,
    rows: R,
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

impl ExactIndex<F32Rows> {
    pub fn new(dim: usize) -> Self {
        Self::with_rows(dim, F32Rows::new(dim))
    }
}

impl ExactIndex<F32Rows> {
    /// An index over unit rows given back to back, without copying them:
    /// face slot `i` is row `i`, of person `persons[i]`.
    pub fn from_rows(dim: usize, values: Vec<f32>, persons: &[Slot]) -> Self {
        let n = persons.len().min(values.len() / dim.max(1));
        let mut e = Self::with_rows(dim, F32Rows::from_values(dim, values));
        e.row_face = (0..n as Slot).collect();
        e.row_person = persons[..n].to_vec();
        e.face_row = (0..n as u32).collect();
        for (row, &p) in persons[..n].iter().enumerate() {
            if e.person_rows.len() <= p as usize {
                e.person_rows.resize_with(p as usize + 1, Vec::new);
            }
            let rows = &mut e.person_rows[p as usize];
            e.persons += usize::from(rows.is_empty());
            rows.push(row as u32);
            e.max_faces_per_person = e.max_faces_per_person.max(rows.len());
        }
        e
    }

    /// The same faces as i8 codes at a scale fitted to the first rows.
    pub fn quantized_copy(&self) -> ExactIndex<I8Rows> {
        let sample: Vec<f32> = (0..self.faces().min(4096)).flat_map(|i| self.rows.row(i).into_owned()).collect();
        let mut q =
            ExactIndex::quantized(self.dim, super::rows::scale_for(&sample, self.dim)).with_threads(self.threads);
        let n = self.faces();
        q.rows.reserve(n);
        q.row_face.reserve_exact(n);
        q.row_person.reserve_exact(n);
        q.face_row.reserve_exact(self.face_row.len());
        for i in 0..n {
            q.insert(self.row_face[i], self.row_person[i], &self.rows.row(i));
        }
        q
    }
}

impl ExactIndex<I8Rows> {
    /// An index over i8 codes at `scale` ([`super::rows::scale_for`]).
    pub fn quantized(dim: usize, scale: f32) -> Self {
        Self::with_rows(dim, I8Rows::new(dim, scale))
    }

    pub fn scale(&self) -> f32 {
        self.rows.scale()
    }

    /// Each face's slot, person's slot and codes, in row order.
    pub fn coded(&self) -> impl Iterator<Item = (Slot, Slot, &[i8])> {
        (0..self.row_face.len()).map(|i| (self.row_face[i], self.row_person[i], self.rows.codes(i)))
    }
}

impl<R: Rows> ExactIndex<R> {
    fn with_rows(dim: usize, rows: R) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            dim,
            rows,
            row_face: Vec::new(),
            row_person: Vec::new(),
            face_row: Vec::new(),
            person_rows: Vec::new(),
            persons: 0,
            max_faces_per_person: 0,
            threads,
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Overrides how many threads a large search may use.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// The best `depth` rows of `range`, as a min-heap.
    fn scan(&self, q: &R::Query, range: std::ops::Range<usize>, depth: usize) -> BinaryHeap<Reverse<(Score, u32)>> {
        let mut heap = BinaryHeap::with_capacity(depth + 1);
        for i in range {
            let s = Score(self.rows.score(q, i));
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

impl<R: Rows> Index for ExactIndex<R> {
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
        self.rows.push(embedding);
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
            self.rows.move_row(last, i);
            self.row_face[i] = self.row_face[last];
            self.row_person[i] = self.row_person[last];
            self.face_row[self.row_face[i] as usize] = row;
            for r in &mut self.person_rows[self.row_person[i] as usize] {
                if *r == last as u32 {
                    *r = row;
                }
            }
        }
        self.rows.pop();
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
        // F bounds any person's face count; codes keep a margin for rounding.
        let mut depth = top_k.saturating_mul(self.max_faces_per_person.max(1));
        if self.rows.storage() != "f32" {
            depth = depth.max(RESCORE_MIN);
        }
        let depth = depth.min(n);
        let threads = self.threads.min(n / PARALLEL_MIN_ROWS).max(1);
        let q = self.rows.prepare(query);
        let heaps: Vec<BinaryHeap<Reverse<(Score, u32)>>> = if threads == 1 {
            vec![self.scan(&q, 0..n, depth)]
        } else {
            let chunk = n.div_ceil(threads);
            let q = &q;
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| s.spawn(move || self.scan(q, t * chunk..((t + 1) * chunk).min(n), depth)))
                    .collect();
                handles.into_iter().filter_map(|h| h.join().ok()).collect()
            })
        };
        let mut rows: Vec<(Score, u32)> = heaps
            .into_iter()
            .flat_map(|h| h.into_iter().map(|Reverse((_, r))| (Score(self.rows.precise(query, r as usize)), r)))
            .collect();
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
            .map(|&r| (Score(self.rows.precise(query, r as usize)), r))
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))?;
        Some((self.hit(best.1, best.0.0), rows.len()))
    }

    fn faces(&self) -> usize {
        self.row_face.len()
    }

    fn entry(&self, i: usize) -> Option<(Slot, Slot, Cow<'_, [f32]>)> {
        (i < self.row_face.len()).then(|| (self.row_face[i], self.row_person[i], self.rows.row(i)))
    }

    fn persons(&self) -> usize {
        self.persons
    }

    fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        self.rows.memory_bytes()
            + (self.row_face.capacity() + self.row_person.capacity() + self.face_row.capacity()) * size_of::<u32>()
            + self.person_rows.iter().map(|r| size_of::<Vec<u32>>() + r.capacity() * size_of::<u32>()).sum::<usize>()
    }

    fn members(&self) -> Vec<(Slot, Slot)> {
        self.row_face.iter().copied().zip(self.row_person.iter().copied()).collect()
    }

    fn kind(&self) -> &'static str {
        match self.rows.storage() {
            "f32" => "exact",
            _ => "exact-i8",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::similarity::dot;
    use crate::gallery::rows::scale_for;

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

    #[test]
    fn the_i8_index_finds_what_the_f32_index_finds() {
        let dim = 64;
        let vectors = crate::gallery::random_unit_vectors(3000, dim, 9);
        let mut exact = ExactIndex::new(dim);
        for (f, v) in vectors.iter().enumerate() {
            exact.insert(f as u32, f as u32 / 2, v);
        }
        let q8 = exact.quantized_copy();
        assert_eq!(q8.kind(), "exact-i8");
        assert_eq!(q8.scale(), scale_for(&vectors.concat(), dim));
        assert!(q8.memory_bytes() * 2 < exact.memory_bytes(), "{} vs {}", q8.memory_bytes(), exact.memory_bytes());
        assert_eq!((q8.faces(), q8.persons()), (3000, 1500));
        // Probes near a face (another photo of its person): the same top face,
        // similarities within the codes' error.
        let noise = crate::gallery::random_unit_vectors(200, dim, 10);
        for (i, n) in noise.iter().enumerate() {
            let q = unit(&vectors[i * 7].iter().zip(n).map(|(a, b)| a + 0.5 * b).collect::<Vec<_>>());
            let (a, b) = (exact.search(&q, 3), q8.search(&q, 3));
            assert_eq!(a[0].face, b[0].face, "probe {i}");
            for (x, y) in a.iter().zip(&b) {
                assert!((x.similarity - y.similarity).abs() < 0.01);
            }
            let (best, n) = q8.best_of_person(&q, a[0].person).unwrap();
            assert_eq!((best.face, n), (a[0].face, 2));
        }
        // Removal moves codes with their rows.
        let mut q8 = q8;
        assert!(q8.remove_face(0));
        let hit = q8.search(&vectors[2999], 1)[0];
        assert_eq!((hit.face, hit.person), (2999, 1499));
        assert!(hit.similarity > 0.995);
        assert_eq!(q8.entry(0).map(|e| e.0), Some(2999));
    }

    #[test]
    fn an_index_over_given_rows_equals_one_built_face_by_face() {
        let vectors = crate::gallery::random_unit_vectors(500, 8, 4);
        let persons: Vec<u32> = (0..500).map(|i| i / 3).collect();
        let mut inserted = ExactIndex::new(8);
        for (i, v) in vectors.iter().enumerate() {
            inserted.insert(i as u32, persons[i], v);
        }
        let mut given = ExactIndex::from_rows(8, vectors.concat(), &persons);
        assert_eq!((given.faces(), given.persons()), (500, 167));
        assert_eq!(given.members(), inserted.members());
        for v in vectors.iter().step_by(50) {
            assert_eq!(given.search(v, 4), inserted.search(v, 4));
        }
        assert!(given.remove_face(0) && inserted.remove_face(0));
        assert_eq!(given.search(&vectors[1], 2), inserted.search(&vectors[1], 2));
    }
}
