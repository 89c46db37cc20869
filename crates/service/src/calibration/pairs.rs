//! The score distributions a set of labelled embeddings shows: every pair of
//! one person's faces is a genuine score, every pair of two persons' faces an
//! impostor score. Large sets are sampled (deterministically, so the same
//! gallery gives the same figures).
use std::collections::BTreeMap;

use rand::{Rng as _, SeedableRng as _};

use super::Histogram;
use crate::domain::similarity::dot;

/// Unit embeddings, each labelled with its person.
pub trait Labelled {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn person(&self, i: usize) -> u32;
    /// Face `i`'s embedding (borrowed where stored as f32, else decoded).
    fn vector(&self, i: usize) -> std::borrow::Cow<'_, [f32]>;
}

/// Faces of one person that give genuine pairs (the first ones): a person
/// with many photos would otherwise outweigh everyone else.
pub const FACES_PER_PERSON: usize = 10;

/// Genuine and impostor scores of a labelled set.
#[derive(Debug, Clone, PartialEq)]
pub struct Pairs {
    pub genuine: Histogram,
    pub impostor: Histogram,
    /// Persons with two or more faces (those that give genuine pairs).
    pub persons_with_pairs: usize,
    pub persons: usize,
    /// Whether the impostor pairs are a random sample rather than all of them.
    pub impostor_sampled: bool,
}

/// Every genuine pair (up to [`FACES_PER_PERSON`] faces a person, at most
/// `max_pairs`), and every impostor pair when there are at most `max_pairs`,
/// otherwise `max_pairs` drawn at random with `seed`.
pub fn score_pairs(set: &impl Labelled, max_pairs: usize, seed: u64) -> Pairs {
    let mut by_person: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for i in 0..set.len() {
        by_person.entry(set.person(i)).or_default().push(i);
    }
    let mut genuine = Histogram::new();
    'persons: for faces in by_person.values() {
        let faces = &faces[..faces.len().min(FACES_PER_PERSON)];
        for (k, &a) in faces.iter().enumerate() {
            for &b in &faces[k + 1..] {
                if genuine.total() as usize >= max_pairs {
                    break 'persons;
                }
                genuine.add(dot(&set.vector(a), &set.vector(b)));
            }
        }
    }
    let n = set.len() as u128;
    let same: u128 = by_person.values().map(|f| (f.len() as u128) * (f.len() as u128).saturating_sub(1) / 2).sum();
    let cross = n * n.saturating_sub(1) / 2 - same;
    let mut impostor = Histogram::new();
    let sampled = cross > max_pairs as u128;
    if sampled {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let mut attempts = 0usize;
        while (impostor.total() as usize) < max_pairs && attempts < max_pairs.saturating_mul(8) {
            attempts += 1;
            let (a, b) = (rng.random_range(0..set.len()), rng.random_range(0..set.len()));
            if set.person(a) != set.person(b) {
                impostor.add(dot(&set.vector(a), &set.vector(b)));
            }
        }
    } else {
        for a in 0..set.len() {
            for b in a + 1..set.len() {
                if set.person(a) != set.person(b) {
                    impostor.add(dot(&set.vector(a), &set.vector(b)));
                }
            }
        }
    }
    Pairs {
        genuine,
        impostor,
        persons_with_pairs: by_person.values().filter(|f| f.len() >= 2).count(),
        persons: by_person.len(),
        impostor_sampled: sampled,
    }
}

/// A labelled set held as vectors (the evaluation commands' photos).
pub struct Owned {
    pub persons: Vec<u32>,
    pub vectors: Vec<Vec<f32>>,
}

impl Labelled for Owned {
    fn len(&self) -> usize {
        self.vectors.len()
    }
    fn person(&self, i: usize) -> u32 {
        self.persons[i]
    }
    fn vector(&self, i: usize) -> std::borrow::Cow<'_, [f32]> {
        std::borrow::Cow::Borrowed(&self.vectors[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> Owned {
        // Person 0: two faces at 0.8; person 1: three identical faces; person 2: one face.
        let (a, b) = (vec![1.0, 0.0], vec![0.8, 0.6]);
        let c = vec![0.0, 1.0];
        Owned { persons: vec![0, 0, 1, 1, 1, 2], vectors: vec![a, b, c.clone(), c.clone(), c, vec![-1.0, 0.0]] }
    }

    #[test]
    fn every_pair_is_genuine_or_impostor_once() {
        let p = score_pairs(&set(), 1000, 1);
        // 1 + 3 genuine pairs; 15 pairs in all.
        assert_eq!((p.genuine.total(), p.impostor.total()), (4, 11));
        assert_eq!((p.persons, p.persons_with_pairs, p.impostor_sampled), (3, 2, false));
        assert_eq!(p.genuine.at_or_above(0.99), 3.0);
        assert_eq!(p.genuine.at_or_above(0.79), 4.0);
        // Impostors: 0.6 (b with c, three times) is the highest.
        assert_eq!(p.impostor.at_or_above(0.59), 3.0);
        assert_eq!(p.impostor.at_or_above(0.61), 0.0);
    }

    #[test]
    fn large_sets_are_sampled_the_same_way_each_time() {
        let p = score_pairs(&set(), 5, 7);
        assert!(p.impostor_sampled);
        assert_eq!(p.impostor.total(), 5);
        assert_eq!(p.genuine.total(), 4);
        assert_eq!(p, score_pairs(&set(), 5, 7));
        // Sampled pairs are never of one person: none scores 1.
        assert_eq!(p.impostor.at_or_above(0.99), 0.0);
    }

    #[test]
    fn one_person_with_many_faces_gives_at_most_45_pairs() {
        let many = Owned { persons: vec![0; 30], vectors: vec![vec![1.0]; 30] };
        assert_eq!(score_pairs(&many, 10_000, 1).genuine.total(), 45);
    }
}
