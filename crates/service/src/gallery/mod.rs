//! The in-memory gallery that 1:N identification and 1:1 verification search:
//! every enrolled embedding of the loaded embedder, kept consistent with the
//! store by the service layer. Faces and persons are compact integer
//! [`Slot`]s, which the service maps to and from its ids; the index knows
//! nothing of ids. Exact search ([`ExactIndex`]) over f32 rows or i8 codes,
//! split over cores for large galleries, or approximate search over an HNSW
//! graph of i8 codes ([`AnnIndex`], usearch's).
use std::borrow::Cow;

mod ann;
mod by_id;
mod exact;
pub mod rows;
pub mod saved;
pub use ann::{AnnIndex, AnnParams};
pub use by_id::{Candidate, Gallery, Member};
pub use exact::ExactIndex;

/// The 1:N index and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct IndexConfig {
    pub kind: IndexKind,
    pub ann: AnnParams,
    /// `auto`: the largest gallery searched exactly; larger ones get the graph.
    pub auto_exact_max: usize,
}

/// Which index identification searches (`--index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IndexKind {
    /// Exact search over f32 embeddings (default).
    #[default]
    Exact,
    /// Exact search over i8 codes: a quarter of the memory and of the bytes
    /// a search reads; similarities within about 0.003.
    ExactI8,
    /// Approximate search (usearch's HNSW graph over i8 codes), saved to disk.
    Ann,
    /// Exact below `auto_exact_max` faces at loading, approximate above.
    Auto,
}

impl IndexKind {
    /// The index a gallery of `faces` gets (`auto` resolved).
    pub fn resolve(self, faces: usize, auto_exact_max: usize) -> IndexKind {
        match self {
            IndexKind::Auto if faces > auto_exact_max => IndexKind::Ann,
            IndexKind::Auto => IndexKind::Exact,
            kind => kind,
        }
    }
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
    /// person's and its embedding (as stored: codes come back as unit f32).
    fn entry(&self, i: usize) -> Option<(Slot, Slot, Cow<'_, [f32]>)>;
    /// Bytes held, approximately (for the memory report).
    fn memory_bytes(&self) -> usize;
    /// The index's name, for /v1/info.
    fn kind(&self) -> &'static str {
        "exact"
    }
    /// Every face held: its slot and its person's.
    fn members(&self) -> Vec<(Slot, Slot)> {
        (0..self.faces()).filter_map(|i| self.entry(i).map(|(f, p, _)| (f, p))).collect()
    }
    /// The graph, for saving it; None for an exact index.
    fn as_ann(&self) -> Option<&AnnIndex> {
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
