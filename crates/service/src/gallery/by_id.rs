//! The gallery as the service sees it: the index, which works on integer
//! slots, and the two maps from face and person ids to slots. Ids become
//! slots here, once, and slots become ids again in the answers; the index
//! never sees an id.
use std::collections::HashMap;

use super::{Hit, Index, Slot};
use crate::calibration::Labelled;
use crate::domain::{id_bits, id_from_bits};

/// One person's best match for a probe, by id.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub person_id: String,
    /// The enrolled face that matched best.
    pub face_id: String,
    pub similarity: f32,
}

/// An id's 128 bits as bytes: a map entry of 20 bytes, where a `u128` key
/// (16-byte aligned) would take 32.
pub type Key = [u8; 16];

/// A face held, as saved beside the graph: both slots and both ids' keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub face: Slot,
    pub face_key: Key,
    pub person: Slot,
    pub person_key: Key,
}

fn key(id: &str) -> Option<Key> {
    id_bits(id).map(u128::to_le_bytes)
}

/// Ids and their slots, in both directions; freed slots are reused.
#[derive(Default, Clone)]
struct Slots {
    slot_of: HashMap<Key, Slot>,
    /// By slot: its id's key (meaningless while the slot is free).
    ids: Vec<Key>,
    free: Vec<Slot>,
}

impl Slots {
    fn get(&self, id: &str) -> Option<Slot> {
        self.slot_of.get(&key(id)?).copied()
    }

    /// The key's slot, given one when it has none; true when it is new.
    fn assign(&mut self, key: Key) -> (Slot, bool) {
        if let Some(&slot) = self.slot_of.get(&key) {
            return (slot, false);
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.ids[slot as usize] = key;
                slot
            }
            None => {
                self.ids.push(key);
                (self.ids.len() - 1) as Slot
            }
        };
        self.slot_of.insert(key, slot);
        (slot, true)
    }

    fn id(&self, slot: Slot) -> String {
        id_from_bits(u128::from_le_bytes(self.ids[slot as usize]))
    }

    fn release(&mut self, slot: Slot) {
        if self.slot_of.remove(&self.ids[slot as usize]).is_some() {
            self.free.push(slot);
        }
    }

    /// Slots as saved: each key at its slot, the gaps free.
    fn restore(pairs: impl Iterator<Item = (Slot, Key)>) -> Self {
        let mut s = Slots::default();
        for (slot, key) in pairs {
            if s.ids.len() <= slot as usize {
                s.ids.resize(slot as usize + 1, [0; 16]);
            }
            s.ids[slot as usize] = key;
            s.slot_of.insert(key, slot);
        }
        let used: std::collections::HashSet<Slot> = s.slot_of.values().copied().collect();
        s.free = (0..s.ids.len() as Slot).rev().filter(|slot| !used.contains(slot)).collect();
        s
    }

    fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        // A hash map entry costs its key and value plus about one control byte.
        self.slot_of.capacity() * (size_of::<(Key, Slot)>() + 1)
            + self.ids.capacity() * size_of::<Key>()
            + self.free.capacity() * size_of::<Slot>()
    }
}

/// The searchable gallery: an index and the ids of its slots.
pub struct Gallery<I: ?Sized = dyn Index> {
    index: Box<I>,
    faces: Slots,
    persons: Slots,
}

impl<I: ?Sized> Gallery<I> {
    pub fn new(index: Box<I>) -> Self {
        Self { index, faces: Slots::default(), persons: Slots::default() }
    }

    /// A gallery over a reopened index and the members saved with it.
    pub fn restore(index: Box<I>, members: &[Member]) -> Self {
        let faces = Slots::restore(members.iter().map(|m| (m.face, m.face_key)));
        let persons = Slots::restore(members.iter().map(|m| (m.person, m.person_key)));
        Self { index, faces, persons }
    }

    /// The same ids over another index made from this one (the exact
    /// index loaded at start-up becomes an HNSW graph, say).
    pub fn map_index<J: ?Sized>(self, f: impl FnOnce(Box<I>) -> Box<J>) -> Gallery<J> {
        Gallery { index: f(self.index), faces: self.faces, persons: self.persons }
    }
}

impl<I: Index + ?Sized> Gallery<I> {
    /// Adds a face; false when an id is malformed, the face is already
    /// present or the embedding has the wrong length.
    pub fn insert(&mut self, face_id: &str, person_id: &str, embedding: &[f32]) -> bool {
        // Each id is parsed once (this runs for every face at start-up).
        let (Some(face_key), Some(person_key)) = (key(face_id), key(person_id)) else { return false };
        let (face, new_face) = self.faces.assign(face_key);
        if !new_face {
            return false;
        }
        let (person, new_person) = self.persons.assign(person_key);
        if self.index.insert(face, person, embedding) {
            return true;
        }
        self.faces.release(face);
        if new_person {
            self.persons.release(person);
        }
        false
    }

    pub fn remove_face(&mut self, face_id: &str) -> bool {
        let Some(face) = self.faces.get(face_id) else { return false };
        let removed = self.index.remove_face(face);
        self.faces.release(face);
        removed
    }

    /// Forgets the person and their faces; returns how many faces.
    pub fn remove_person(&mut self, person_id: &str) -> usize {
        let Some(person) = self.persons.get(person_id) else { return 0 };
        let faces = self.index.remove_person(person);
        for &face in &faces {
            self.faces.release(face);
        }
        self.persons.release(person);
        faces.len()
    }

    fn candidate(&self, hit: Hit) -> Candidate {
        Candidate {
            person_id: self.persons.id(hit.person),
            face_id: self.faces.id(hit.face),
            similarity: hit.similarity,
        }
    }

    /// The `top_k` persons most similar to `query` (each by its best face), best first.
    pub fn search(&self, query: &[f32], top_k: usize) -> Vec<Candidate> {
        self.index.search(query, top_k).into_iter().map(|h| self.candidate(h)).collect()
    }

    /// The best face of one person and how many faces were compared.
    pub fn best_of_person(&self, query: &[f32], person_id: &str) -> Option<(Candidate, usize)> {
        let (hit, compared) = self.index.best_of_person(query, self.persons.get(person_id)?)?;
        Some((self.candidate(hit), compared))
    }

    /// Whether any face of this person is in the gallery.
    pub fn has_face(&self, face_id: &str) -> bool {
        self.faces.get(face_id).is_some()
    }

    pub fn has_person(&self, person_id: &str) -> bool {
        self.persons.get(person_id).is_some()
    }

    pub fn faces(&self) -> usize {
        self.index.faces()
    }

    pub fn persons(&self) -> usize {
        self.index.persons()
    }

    pub fn kind(&self) -> &'static str {
        self.index.kind()
    }

    /// The `i`-th face held (for `i` below [`Gallery::faces`]): its id, its
    /// person's id and its embedding.
    pub fn entry(&self, i: usize) -> Option<(String, String, std::borrow::Cow<'_, [f32]>)> {
        let (face, person, v) = self.index.entry(i)?;
        Some((self.faces.id(face), self.persons.id(person), v))
    }

    /// Every face held, with its slots and ids' keys (saved beside the graph).
    pub fn members(&self) -> Vec<Member> {
        let key = |s: &Slots, slot: Slot| s.ids[slot as usize];
        self.index
            .members()
            .into_iter()
            .map(|(face, person)| Member {
                face,
                face_key: key(&self.faces, face),
                person,
                person_key: key(&self.persons, person),
            })
            .collect()
    }

    /// The index, to save it.
    pub fn index(&self) -> &I {
        &self.index
    }

    /// Bytes held, approximately: the index and the id maps.
    pub fn memory_bytes(&self) -> usize {
        self.index.memory_bytes() + self.faces.memory_bytes() + self.persons.memory_bytes()
    }
}

/// The gallery's faces labelled by person, as calibration reads them.
impl<I: Index + ?Sized> Labelled for Gallery<I> {
    fn len(&self) -> usize {
        self.index.faces()
    }
    fn person(&self, i: usize) -> u32 {
        self.index.entry(i).map_or(u32::MAX, |e| e.1)
    }
    fn vector(&self, i: usize) -> std::borrow::Cow<'_, [f32]> {
        self.index.entry(i).map_or(std::borrow::Cow::Borrowed(&[]), |e| e.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::new_id;
    use crate::gallery::ExactIndex;

    #[test]
    fn ids_map_to_slots_that_are_reused_without_mixing_identities() {
        let mut g: Gallery = Gallery::new(Box::new(ExactIndex::new(2)));
        let (ann, bob, cid) = (new_id(), new_id(), new_id());
        let faces: Vec<String> = (0..4).map(|_| new_id()).collect();
        assert!(g.insert(&faces[0], &ann, &[1.0, 0.0]));
        assert!(g.insert(&faces[1], &ann, &[0.0, 1.0]));
        assert!(g.insert(&faces[2], &bob, &[-1.0, 0.0]));
        assert!(!g.insert(&faces[2], &bob, &[-1.0, 0.0]), "a face already present");
        assert!(!g.insert(&faces[3], &bob, &[1.0]), "the wrong length");
        assert!(!g.insert("f7", &bob, &[1.0, 0.0]) && !g.insert(&faces[3], "p", &[1.0, 0.0]), "malformed ids");
        assert!(!g.insert(&faces[3], &cid, &[1.0]) && g.best_of_person(&[1.0, 0.0], &cid).is_none());
        let best = g.search(&[0.0, 1.0], 1);
        assert_eq!((best[0].person_id.as_str(), best[0].face_id.as_str()), (ann.as_str(), faces[1].as_str()));
        assert_eq!(g.remove_person(&ann), 2);
        assert_eq!((g.faces(), g.persons()), (1, 1));
        // The freed slots go to new ids, which answer as themselves.
        assert!(g.insert(&faces[3], &cid, &[0.0, 1.0]));
        let best = g.search(&[0.0, 1.0], 2);
        assert_eq!((best[0].person_id.as_str(), best[0].face_id.as_str()), (cid.as_str(), faces[3].as_str()));
        assert_eq!(best[1].person_id, bob);
        assert!(g.search(&[1.0, 0.0], 5).iter().all(|c| c.person_id != ann && c.face_id != faces[0]));
        assert!(g.best_of_person(&[1.0, 0.0], &ann).is_none());
        assert!(g.remove_face(&faces[2]) && !g.remove_face(&faces[2]));
        assert_eq!((g.faces(), g.persons()), (1, 1));
    }
}
