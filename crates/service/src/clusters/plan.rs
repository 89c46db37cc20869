//! Where arriving faces go, planned before anything is written: the store
//! writes the plan in one transaction, then [`Clusters::apply`] makes the
//! memory agree. Planning reads the held clusters through an overlay of the
//! changes earlier faces of the same plan make.
use std::collections::{HashMap, HashSet};

use super::Clusters;
use crate::domain::similarity::dot;
use crate::domain::{id_bits, id_from_bits, new_id};

/// Where one face goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The cluster the face ends in (a new id when it starts one).
    pub cluster: String,
    /// Clusters relabelled on the way, `(from, into)` in order (a later
    /// merge may carry an earlier one's `into` further): after them, every
    /// face of each ends in `cluster`.
    pub merges: Vec<(String, String)>,
}

/// The changes of a plan so far, over the held clusters.
#[derive(Default)]
struct Overlay {
    /// Clusters changed or made: their sum and size.
    changed: HashMap<u128, (Vec<f32>, usize)>,
    /// Clusters absorbed into others.
    gone: HashSet<u128>,
}

impl Clusters {
    /// Where each face goes, one after another (each sees the ones before).
    pub fn plan(&self, faces: &[&[f32]]) -> Vec<Placement> {
        let mut overlay = Overlay::default();
        faces.iter().map(|x| self.place(x, &mut overlay)).collect()
    }

    /// Makes the memory what a written placement left: the merges, then
    /// the face in its cluster (the order does not change the result).
    pub fn apply(&mut self, face_id: &str, p: &Placement, values: &[f32], external_id: Option<&str>) -> bool {
        for (from, into) in &p.merges {
            self.relabel(from, into);
        }
        self.insert(face_id, &p.cluster, values, external_id)
    }

    /// The held cluster (or one the plan changed) with the highest average
    /// similarity to the `n` faces summed in `q`, other than `skip`.
    fn best(&self, q: &[f32], n: usize, skip: u128, o: &Overlay) -> Option<(u128, f32)> {
        let mut best: Option<(u128, f32)> = None;
        let mut consider = |id: u128, sum: &[f32], size: usize| {
            if id == skip || size == 0 {
                return;
            }
            let a = dot(q, sum) / (n * size) as f32;
            if best.is_none_or(|(_, b)| a > b) {
                best = Some((id, a));
            }
        };
        // The plan's own clusters (a few) are read from the overlay, not the slots.
        let own: Vec<u128> = o.gone.iter().chain(o.changed.keys()).copied().collect();
        for (s, &id) in self.ids.iter().enumerate() {
            if id != 0 && (own.is_empty() || !own.contains(&id)) {
                consider(id, self.sum(s as u32), self.members[s].len());
            }
        }
        for (&id, (sum, size)) in &o.changed {
            consider(id, sum, *size);
        }
        best
    }

    /// A cluster's sum and size as the plan sees it.
    fn state(&self, id: u128, o: &Overlay) -> (Vec<f32>, usize) {
        if let Some((sum, n)) = o.changed.get(&id) {
            return (sum.clone(), *n);
        }
        match self.by_id.get(&id) {
            Some(&s) => (self.sum(s).to_vec(), self.members[s as usize].len()),
            None => (vec![0.0; self.dim], 0),
        }
    }

    fn place(&self, x: &[f32], o: &mut Overlay) -> Placement {
        let mut target = match self.best(x, 1, 0, o) {
            Some((c, a)) if a >= self.join => c,
            _ => id_bits(&new_id()).unwrap_or(1),
        };
        let (mut sum, mut n) = self.state(target, o);
        sum.iter_mut().zip(x).for_each(|(s, v)| *s += v);
        n += 1;
        let mut merges = Vec::new();
        // The grown cluster absorbs (or is absorbed by) every cluster its
        // average similarity to reaches the threshold.
        while let Some((other, a)) = self.best(&sum, n, target, o) {
            if a < self.join {
                break;
            }
            let (other_sum, other_n) = self.state(other, o);
            // The larger keeps its id (ties: the older, smaller id).
            let (keep, drop) = match (other_n, std::cmp::Reverse(other)) > (n, std::cmp::Reverse(target)) {
                true => (other, target),
                false => (target, other),
            };
            merges.push((id_from_bits(drop), id_from_bits(keep)));
            sum.iter_mut().zip(&other_sum).for_each(|(s, v)| *s += v);
            n += other_n;
            o.changed.remove(&drop);
            o.gone.insert(drop);
            target = keep;
        }
        o.changed.insert(target, (sum, n));
        Placement { cluster: id_from_bits(target), merges }
    }
}
