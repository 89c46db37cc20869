//! The in-memory gallery that 1:N identification and 1:1 verification search:
//! every enrolled embedding of the loaded embedder, kept consistent with the
//! store by the service layer. Exact search over contiguous f32 rows; the
//! [`Index`] trait lets an approximate index replace it.
use std::collections::HashMap;

use crate::vision::similarity::dot;

/// One person's best match for a probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub person_id: String,
    /// The enrolled face that matched best.
    pub face_id: String,
    pub similarity: f32,
}

/// A searchable set of unit embeddings, each tied to a face and a person.
pub trait Index: Send + Sync {
    fn insert(&mut self, face_id: &str, person_id: &str, embedding: &[f32]);
    fn remove_face(&mut self, face_id: &str) -> bool;
    fn remove_person(&mut self, person_id: &str) -> usize;
    /// The `top_k` persons most similar to `query` (each by its best face), best first.
    fn search(&self, query: &[f32], top_k: usize) -> Vec<Candidate>;
    /// The best face of one person and how many faces were compared.
    fn best_of_person(&self, query: &[f32], person_id: &str) -> Option<(Candidate, usize)>;
    fn faces(&self) -> usize;
    fn persons(&self) -> usize;
}

/// Brute-force cosine search over a contiguous row-major matrix.
#[derive(Default)]
pub struct ExactIndex {
    dim: usize,
    rows: Vec<f32>,
    ids: Vec<(String, String)>,
    row_of: HashMap<String, usize>,
    faces_of: HashMap<String, Vec<String>>,
}

impl ExactIndex {
    pub fn new(dim: usize) -> Self {
        Self { dim, ..Self::default() }
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.rows[i * self.dim..(i + 1) * self.dim]
    }
}

impl Index for ExactIndex {
    fn insert(&mut self, face_id: &str, person_id: &str, embedding: &[f32]) {
        if embedding.len() != self.dim || self.row_of.contains_key(face_id) {
            return;
        }
        self.row_of.insert(face_id.to_string(), self.ids.len());
        self.ids.push((face_id.to_string(), person_id.to_string()));
        self.rows.extend_from_slice(embedding);
        self.faces_of.entry(person_id.to_string()).or_default().push(face_id.to_string());
    }

    fn remove_face(&mut self, face_id: &str) -> bool {
        let Some(i) = self.row_of.remove(face_id) else { return false };
        let last = self.ids.len() - 1;
        if i != last {
            self.rows.copy_within(last * self.dim..(last + 1) * self.dim, i * self.dim);
            self.ids.swap(i, last);
            self.row_of.insert(self.ids[i].0.clone(), i);
        }
        self.rows.truncate(last * self.dim);
        let (_, person) = self.ids.pop().unwrap_or_default();
        if let Some(faces) = self.faces_of.get_mut(&person) {
            faces.retain(|f| f != face_id);
            if faces.is_empty() {
                self.faces_of.remove(&person);
            }
        }
        true
    }

    fn remove_person(&mut self, person_id: &str) -> usize {
        let faces = self.faces_of.get(person_id).cloned().unwrap_or_default();
        faces.iter().filter(|f| self.remove_face(f)).count()
    }

    fn search(&self, query: &[f32], top_k: usize) -> Vec<Candidate> {
        if query.len() != self.dim || top_k == 0 {
            return Vec::new();
        }
        let mut best: HashMap<&str, (f32, usize)> = HashMap::new();
        for (i, (_, person)) in self.ids.iter().enumerate() {
            let s = dot(query, self.row(i));
            let e = best.entry(person.as_str()).or_insert((f32::NEG_INFINITY, i));
            if s > e.0 {
                *e = (s, i);
            }
        }
        let mut out: Vec<Candidate> = best
            .into_iter()
            .map(|(p, (s, i))| Candidate { person_id: p.to_string(), face_id: self.ids[i].0.clone(), similarity: s })
            .collect();
        out.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then_with(|| a.person_id.cmp(&b.person_id)));
        out.truncate(top_k);
        out
    }

    fn best_of_person(&self, query: &[f32], person_id: &str) -> Option<(Candidate, usize)> {
        let faces = self.faces_of.get(person_id)?;
        let mut best: Option<Candidate> = None;
        for f in faces {
            let Some(&i) = self.row_of.get(f) else { continue };
            let s = dot(query, self.row(i));
            if best.as_ref().is_none_or(|b| s > b.similarity) {
                best = Some(Candidate { person_id: person_id.to_string(), face_id: f.clone(), similarity: s });
            }
        }
        best.map(|b| (b, faces.len()))
    }

    fn faces(&self) -> usize {
        self.ids.len()
    }

    fn persons(&self) -> usize {
        self.faces_of.len()
    }
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
        let mut g = ExactIndex::new(2);
        g.insert("f1", "alice", &unit(&[1.0, 0.0]));
        g.insert("f2", "alice", &unit(&[0.0, 1.0]));
        g.insert("f3", "bob", &unit(&[1.0, 1.0]));
        let r = g.search(&unit(&[0.0, 1.0]), 10);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].person_id.as_str(), r[0].face_id.as_str()), ("alice", "f2"));
        assert!((r[0].similarity - 1.0).abs() < 1e-6);
        assert_eq!(r[1].person_id, "bob");
        assert_eq!(g.search(&unit(&[0.0, 1.0]), 1).len(), 1);
        let (best, n) = g.best_of_person(&unit(&[1.0, 0.1]), "alice").unwrap();
        assert_eq!((best.face_id.as_str(), n), ("f1", 2));
        assert!(g.best_of_person(&unit(&[1.0, 0.1]), "carol").is_none());
    }

    #[test]
    fn removals_keep_rows_and_ids_consistent() {
        let mut g = ExactIndex::new(2);
        g.insert("f1", "alice", &unit(&[1.0, 0.0]));
        g.insert("f2", "bob", &unit(&[0.0, 1.0]));
        g.insert("f3", "carol", &unit(&[-1.0, 0.0]));
        assert!(g.remove_face("f1"));
        assert!(!g.remove_face("f1"));
        // carol's row moved into slot 0 and must still be found as carol
        let r = g.search(&unit(&[-1.0, 0.0]), 1);
        assert_eq!((r[0].person_id.as_str(), r[0].face_id.as_str()), ("carol", "f3"));
        assert!((r[0].similarity - 1.0).abs() < 1e-6);
        assert_eq!((g.faces(), g.persons()), (2, 2));
        g.insert("f4", "bob", &unit(&[0.5, 0.5]));
        assert_eq!(g.remove_person("bob"), 2);
        assert_eq!((g.faces(), g.persons()), (1, 1));
        assert!(g.search(&unit(&[0.0, 1.0]), 5).iter().all(|c| c.person_id != "bob"));
        // wrong dimension and duplicates are ignored
        g.insert("f5", "dan", &[1.0]);
        g.insert("f3", "dan", &unit(&[1.0, 0.0]));
        assert_eq!(g.faces(), 1);
    }
}
