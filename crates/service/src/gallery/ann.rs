//! Approximate search: an HNSW graph from usearch (chosen by measurement,
//! see `bench/ann-choice/`) over i8 codes at one gallery-wide scale, keyed
//! by face slot. Inserts and deletions change the graph online; the graph is
//! saved to a file and reopened instead of being rebuilt ([`AnnIndex::save`],
//! [`AnnIndex::open`]). The candidates a graph search returns are scored
//! again precisely (the f32 query against each candidate's codes).
use std::borrow::Cow;
use std::path::Path;

use anyhow::{Context as _, Result, anyhow};
use usearch::{IndexOptions, MetricKind, ScalarKind};

use super::rows::{I8Rows, cosine_to_codes, decode, inv_norm, quantize};
use super::{ExactIndex, Hit, Index, Score, Slot};

/// The graph's parameters (`--ann-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct AnnParams {
    /// Links per node (HNSW's M): more is slower and larger but finds more.
    pub connectivity: usize,
    /// Candidates considered while linking a new face (efConstruction).
    pub expansion_add: usize,
    /// Candidates considered while searching (ef).
    pub expansion_search: usize,
    /// Threads that build the graph at start-up.
    pub build_threads: usize,
}

impl Default for AnnParams {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self { connectivity: 32, expansion_add: 128, expansion_search: 256, build_threads: threads }
    }
}

/// Searches that may run at once (usearch keeps a context for each).
const SEARCH_CONTEXTS: usize = 64;

/// Candidates a search asks the graph for at least, to score precisely.
const RESCORE_MIN: usize = 16;

const NO_PERSON: Slot = Slot::MAX;

/// usearch's HNSW graph over i8 codes, with the face/person bookkeeping.
pub struct AnnIndex {
    graph: usearch::Index,
    dim: usize,
    scale: f32,
    params: AnnParams,
    /// By face slot: its person, or [`NO_PERSON`].
    face_person: Vec<Slot>,
    /// By person slot: their faces.
    person_faces: Vec<Vec<Slot>>,
    /// Live faces in no order (for [`Index::entry`]) and each one's place there.
    listed: Vec<Slot>,
    place: Vec<u32>,
    persons: usize,
    max_faces_per_person: usize,
}

fn options(dim: usize, params: AnnParams) -> IndexOptions {
    IndexOptions {
        dimensions: dim,
        metric: MetricKind::Cos,
        quantization: ScalarKind::I8,
        connectivity: params.connectivity,
        expansion_add: params.expansion_add,
        expansion_search: params.expansion_search,
        multi: false,
    }
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("usearch: {e}")
}

impl AnnIndex {
    fn empty(dim: usize, scale: f32, params: AnnParams) -> Result<Self> {
        let graph = usearch::Index::new(&options(dim, params)).map_err(err)?;
        graph.reserve_capacity_and_threads(1024, SEARCH_CONTEXTS.max(params.build_threads)).map_err(err)?;
        Ok(Self {
            graph,
            dim,
            scale,
            params,
            face_person: Vec::new(),
            person_faces: Vec::new(),
            listed: Vec::new(),
            place: Vec::new(),
            persons: 0,
            max_faces_per_person: 0,
        })
    }

    /// Builds the graph over an exact index's codes, on `params.build_threads`.
    pub fn build(exact: &ExactIndex<I8Rows>, params: AnnParams) -> Result<Self> {
        let mut ann = Self::empty(exact.dim(), exact.scale(), params)?;
        let faces: Vec<(Slot, Slot, &[i8])> = exact.coded().collect();
        let threads = params.build_threads.max(1);
        ann.graph.reserve_capacity_and_threads(faces.len().max(1024), SEARCH_CONTEXTS.max(threads)).map_err(err)?;
        let failed = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for t in 0..threads {
                let (graph, faces, failed) = (&ann.graph, &faces, &failed);
                s.spawn(move || {
                    for (face, _, codes) in faces.iter().skip(t).step_by(threads) {
                        if graph.add::<i8>(u64::from(*face), codes).is_err() {
                            failed.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        if failed.into_inner() {
            return Err(anyhow!("usearch could not add every face to the graph"));
        }
        faces.iter().for_each(|&(face, person, _)| ann.note(face, person));
        Ok(ann)
    }

    /// Reopens a graph [`AnnIndex::save`] wrote, with the faces it holds (face
    /// slot, person slot); refuses a file that does not hold exactly them.
    pub fn open(path: &Path, dim: usize, scale: f32, params: AnnParams, faces: &[(Slot, Slot)]) -> Result<Self> {
        let ann = Self::empty(dim, scale, params)?;
        let p = path.to_str().context("the index path is not UTF-8")?;
        ann.graph.load(p).map_err(err).with_context(|| format!("reading {}", path.display()))?;
        ann.loaded(&path.display().to_string(), faces)
    }

    /// As [`AnnIndex::open`], from the bytes [`AnnIndex::to_bytes`] gave.
    pub fn from_bytes(bytes: &[u8], dim: usize, scale: f32, params: AnnParams, faces: &[(Slot, Slot)]) -> Result<Self> {
        let ann = Self::empty(dim, scale, params)?;
        ann.graph.load_from_buffer(bytes).map_err(err).context("reading a saved graph")?;
        ann.loaded("the saved graph", faces)
    }

    /// A loaded graph checked against the faces it must hold.
    fn loaded(self, path: &str, faces: &[(Slot, Slot)]) -> Result<Self> {
        let (params, dim) = (self.params, self.dim);
        let mut ann = self;
        ann.graph.change_expansion_search(params.expansion_search);
        ann.graph.change_expansion_add(params.expansion_add);
        let size = ann.graph.size();
        ann.graph
            .reserve_capacity_and_threads(size.max(1024), SEARCH_CONTEXTS.max(params.build_threads))
            .map_err(err)?;
        if ann.graph.dimensions() != dim || size != faces.len() {
            return Err(anyhow!(
                "{path} holds {size} faces of {} dimensions, not the {} of {dim} expected",
                ann.graph.dimensions(),
                faces.len()
            ));
        }
        for &(face, person) in faces {
            if !ann.graph.contains(u64::from(face)) {
                return Err(anyhow!("{path} lacks face slot {face}"));
            }
            ann.note(face, person);
        }
        Ok(ann)
    }

    /// The graph in usearch's format, in memory (with room to seal it in place).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut bytes = Vec::with_capacity(self.graph.serialized_length() + crate::sealing::OVERHEAD);
        bytes.resize(self.graph.serialized_length(), 0);
        self.graph.save_to_buffer(&mut bytes).map_err(err)?;
        Ok(bytes)
    }

    /// Writes the graph to `path` (usearch's format).
    pub fn save(&self, path: &Path) -> Result<()> {
        let p = path.to_str().context("the index path is not UTF-8")?;
        self.graph.save(p).map_err(err).with_context(|| format!("writing {}", path.display()))
    }

    pub fn scale(&self) -> f32 {
        self.scale
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Records a face added to the graph.
    fn note(&mut self, face: Slot, person: Slot) {
        let f = face as usize;
        if self.face_person.len() <= f {
            self.face_person.resize(f + 1, NO_PERSON);
            self.place.resize(f + 1, 0);
        }
        if self.person_faces.len() <= person as usize {
            self.person_faces.resize_with(person as usize + 1, Vec::new);
        }
        self.face_person[f] = person;
        self.place[f] = self.listed.len() as u32;
        self.listed.push(face);
        let faces = &mut self.person_faces[person as usize];
        if faces.is_empty() {
            self.persons += 1;
        }
        faces.push(face);
        self.max_faces_per_person = self.max_faces_per_person.max(faces.len());
    }

    fn person_of(&self, face: Slot) -> Option<Slot> {
        self.face_person.get(face as usize).copied().filter(|&p| p != NO_PERSON)
    }

    fn codes(&self, face: Slot) -> Option<Vec<i8>> {
        let mut codes = vec![0i8; self.dim];
        match self.graph.get::<i8>(u64::from(face), &mut codes) {
            Ok(n) if n > 0 => Some(codes),
            _ => None,
        }
    }

    /// The cosine of an f32 query and a face's codes.
    fn precise(&self, query: &[f32], face: Slot) -> Option<f32> {
        let codes = self.codes(face)?;
        Some(cosine_to_codes(query, &codes, inv_norm(&codes)))
    }

    /// usearch's own account of its memory.
    pub fn memory_report(&self) -> String {
        let s = self.graph.memory_stats();
        format!(
            "graph allocated {} wasted {} reserved {}; vectors allocated {} wasted {} reserved {}; memory_usage {}",
            s.graph_allocated,
            s.graph_wasted,
            s.graph_reserved,
            s.vectors_allocated,
            s.vectors_wasted,
            s.vectors_reserved,
            self.graph.memory_usage()
        )
    }

    pub fn params(&self) -> AnnParams {
        self.params
    }
}

impl Index for AnnIndex {
    fn insert(&mut self, face: Slot, person: Slot, embedding: &[f32]) -> bool {
        if embedding.len() != self.dim || self.person_of(face).is_some() {
            return false;
        }
        let size = self.graph.size();
        if size + 1 > self.graph.capacity() {
            let contexts = SEARCH_CONTEXTS.max(self.params.build_threads);
            if self.graph.reserve_capacity_and_threads((size + 1) * 2, contexts).is_err() {
                return false;
            }
        }
        if self.graph.add::<i8>(u64::from(face), &quantize(embedding, self.scale)).is_err() {
            return false;
        }
        self.note(face, person);
        true
    }

    fn remove_face(&mut self, face: Slot) -> bool {
        let Some(person) = self.person_of(face) else { return false };
        if self.graph.remove(u64::from(face)).is_err() {
            return false;
        }
        self.face_person[face as usize] = NO_PERSON;
        let at = self.place[face as usize] as usize;
        self.listed.swap_remove(at);
        if let Some(&moved) = self.listed.get(at) {
            self.place[moved as usize] = at as u32;
        }
        let faces = &mut self.person_faces[person as usize];
        faces.retain(|&f| f != face);
        if faces.is_empty() {
            self.persons -= 1;
        }
        true
    }

    fn remove_person(&mut self, person: Slot) -> Vec<Slot> {
        let faces = self.person_faces.get(person as usize).cloned().unwrap_or_default();
        faces.into_iter().filter(|&f| self.remove_face(f)).collect()
    }

    fn search(&self, query: &[f32], top_k: usize) -> Vec<Hit> {
        if query.len() != self.dim || top_k == 0 || self.listed.is_empty() {
            return Vec::new();
        }
        let count = top_k.saturating_mul(self.max_faces_per_person.max(1)).max(RESCORE_MIN).min(self.listed.len());
        let Ok(found) = self.graph.search::<i8>(&quantize(query, self.scale), count) else { return Vec::new() };
        let mut hits: Vec<(Score, Slot, Slot)> = found
            .keys
            .iter()
            .filter_map(|&k| {
                let face = Slot::try_from(k).ok()?;
                Some((Score(self.precise(query, face)?), face, self.person_of(face)?))
            })
            .collect();
        hits.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut seen = std::collections::HashSet::new();
        hits.into_iter()
            .filter(|h| seen.insert(h.2))
            .take(top_k)
            .map(|(s, face, person)| Hit { person, face, similarity: s.0 })
            .collect()
    }

    fn best_of_person(&self, query: &[f32], person: Slot) -> Option<(Hit, usize)> {
        let faces = self.person_faces.get(person as usize).filter(|f| !f.is_empty())?;
        let best = faces
            .iter()
            .filter_map(|&f| Some((Score(self.precise(query, f)?), f)))
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))?;
        Some((Hit { person, face: best.1, similarity: best.0.0 }, faces.len()))
    }

    fn faces(&self) -> usize {
        self.listed.len()
    }

    fn persons(&self) -> usize {
        self.persons
    }

    fn entry(&self, i: usize) -> Option<(Slot, Slot, Cow<'_, [f32]>)> {
        let face = *self.listed.get(i)?;
        let codes = self.codes(face)?;
        Some((face, self.person_of(face)?, Cow::Owned(decode(&codes, inv_norm(&codes)))))
    }

    fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        // usearch's arenas grow by doubling: what is in use, not the
        // untouched reserve (resident memory agrees).
        let s = self.graph.memory_stats();
        s.graph_allocated.saturating_sub(s.graph_reserved)
            + s.vectors_allocated.saturating_sub(s.vectors_reserved)
            + (self.face_person.capacity() + self.listed.capacity() + self.place.capacity()) * size_of::<u32>()
            + self.person_faces.iter().map(|f| size_of::<Vec<u32>>() + f.capacity() * size_of::<u32>()).sum::<usize>()
    }

    fn kind(&self) -> &'static str {
        "ann"
    }

    fn members(&self) -> Vec<(Slot, Slot)> {
        self.listed.iter().map(|&f| (f, self.face_person[f as usize])).collect()
    }

    fn as_ann(&self) -> Option<&AnnIndex> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::similarity::{dot, l2_normalize};
    use crate::gallery::random_unit_vectors;

    const DIM: usize = 32;

    fn params() -> AnnParams {
        AnnParams { connectivity: 16, expansion_add: 64, expansion_search: 64, build_threads: 2 }
    }

    /// 2,000 faces of 1,000 persons (two each), as a graph.
    fn built() -> (AnnIndex, Vec<Vec<f32>>) {
        let vectors = random_unit_vectors(2000, DIM, 21);
        let mut exact = ExactIndex::new(DIM);
        for (f, v) in vectors.iter().enumerate() {
            exact.insert(f as u32, f as u32 / 2, v);
        }
        (AnnIndex::build(&exact.quantized_copy(), params()).unwrap(), vectors)
    }

    fn near(v: &[f32], seed: u64) -> Vec<f32> {
        let n = &random_unit_vectors(1, DIM, seed)[0];
        let mut q: Vec<f32> = v.iter().zip(n).map(|(a, b)| a + 0.3 * b).collect();
        l2_normalize(&mut q);
        q
    }

    #[test]
    fn the_graph_finds_each_face_and_scores_it_precisely() {
        let (ann, vectors) = built();
        assert_eq!((ann.faces(), ann.persons(), ann.kind()), (2000, 1000, "ann"));
        let mut found = 0;
        for (f, v) in vectors.iter().enumerate().step_by(10) {
            let q = near(v, 1000 + f as u64);
            let hits = ann.search(&q, 3);
            assert!(hits.len() == 3 && hits[0].similarity >= hits[1].similarity);
            assert_ne!(hits[0].person, hits[1].person);
            if hits[0].face == f as u32 {
                found += 1;
                assert!((hits[0].similarity - dot(&q, v)).abs() < 0.01);
                assert_eq!(hits[0].person, f as u32 / 2);
            }
            let (best, n) = ann.best_of_person(&q, f as u32 / 2).unwrap();
            assert_eq!((best.face, n), (f as u32, 2));
        }
        assert!(found >= 190, "{found} of 200 found");
        let (face, person, v) = ann.entry(5).unwrap();
        assert!((dot(&v, &vectors[face as usize]) - 1.0).abs() < 0.002);
        assert_eq!(person, face / 2);
        assert!(ann.memory_bytes() > 2000 * DIM);
    }

    #[test]
    fn inserts_and_removals_change_the_graph_online() {
        let (mut ann, vectors) = built();
        assert!(ann.remove_face(10));
        assert!(!ann.remove_face(10));
        assert!(ann.search(&vectors[10], 5).iter().all(|h| h.face != 10));
        assert_eq!(ann.best_of_person(&vectors[10], 5).map(|(h, n)| (h.face, n)), Some((11, 1)));
        assert_eq!(ann.remove_person(5), vec![11]);
        assert_eq!((ann.faces(), ann.persons()), (1998, 999));
        assert!(ann.best_of_person(&vectors[10], 5).is_none());
        // A freed slot takes another person's new face.
        let fresh = &random_unit_vectors(1, DIM, 77)[0];
        assert!(ann.insert(10, 4000, fresh));
        assert!(!ann.insert(10, 4000, fresh), "a face is added once");
        assert!(!ann.insert(12345, 1, &[1.0; 3]), "the wrong length is refused");
        let hit = ann.search(fresh, 1)[0];
        assert_eq!((hit.face, hit.person), (10, 4000));
        // Past the reserved capacity.
        for f in 0..3000u32 {
            assert!(ann.insert(10_000 + f, 5000 + f, &random_unit_vectors(1, DIM, 100 + u64::from(f))[0]));
        }
        assert_eq!(ann.faces(), 4999);
        let listed: std::collections::HashSet<u32> = (0..ann.faces()).map(|i| ann.entry(i).unwrap().0).collect();
        assert_eq!(listed.len(), 4999);
        assert!(!listed.contains(&11));
    }

    #[test]
    fn a_saved_graph_reopens_with_its_faces_and_refuses_others() {
        let (mut ann, vectors) = built();
        ann.remove_face(0);
        let path = std::env::temp_dir().join(format!("visage-ann-{}.usearch", std::process::id()));
        ann.save(&path).unwrap();
        let members = ann.members();
        let back = AnnIndex::open(&path, DIM, ann.scale(), params(), &members).unwrap();
        assert_eq!((back.faces(), back.persons()), (1999, 1000));
        let q = near(&vectors[42], 5);
        assert_eq!(back.search(&q, 2), ann.search(&q, 2));
        // Faces the graph does not hold, or a count that differs: refused.
        let mut other = members.clone();
        other[0].0 = 0;
        assert!(AnnIndex::open(&path, DIM, ann.scale(), params(), &other).is_err());
        assert!(AnnIndex::open(&path, DIM, ann.scale(), params(), &members[1..]).is_err());
        assert!(AnnIndex::open(&path, DIM + 1, ann.scale(), params(), &members).is_err());
        std::fs::write(&path, b"not a graph").unwrap();
        assert!(AnnIndex::open(&path, DIM, ann.scale(), params(), &members).is_err());
        std::fs::remove_file(&path).unwrap();
    }
}
