//! Where arriving faces go, planned before anything is written: the store
//! writes the plan in one transaction, then [`Clusters::apply`] makes the
//! memory agree. Planning reads the held clusters through the changes
//! earlier steps of the same plan made.
//!
//! One arrival is one scan of the held clusters: the average similarity of
//! the face to each. The grown cluster can only reach (on average) a
//! cluster the face itself reaches, as long as no two clusters reach each
//! other (what merging keeps true), so merges are looked for among those.
//! Then the grown cluster gives up its misfits: a face whose average
//! similarity to the rest of its cluster fell below the threshold arrives
//! again, anywhere but there (average linkage's invariant, kept as faces
//! arrive in any order; on LFW View 1 it lifts pairwise precision from
//! 0.99 to 1.0 on DevTest, bench/clustering/README.md).
use std::cmp::Reverse;
use std::collections::HashMap;

use super::Clusters;
use crate::domain::Regroup;
use crate::domain::similarity::dot;
use crate::domain::{id_bits, id_from_bits, new_id};

/// Misfits one placed face may move at most (a bound on the cascade; on
/// LFW View 1 a face moves for one arrival in about 500).
const MOST_MOVES: usize = 16;

/// Where one face goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The cluster the face is written in (a new id when it starts one).
    pub cluster: String,
    /// What its arrival changed besides, in order: clusters merged (a later
    /// merge may carry an earlier one's `into` further), faces moved.
    pub steps: Vec<Regroup>,
}

/// A face of a plan's cluster: one already held, or the plan's own `i`th.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Held(u128),
    Own(usize),
}

/// A cluster as the plan changed it.
struct Group {
    sum: Vec<f32>,
    members: Vec<Member>,
}

struct Planner<'a> {
    held: &'a Clusters,
    faces: &'a [&'a [f32]],
    /// Clusters the plan changed or made; one it absorbed is in neither
    /// this nor the held slots' view.
    changed: HashMap<u128, Group>,
    /// Held slots the plan changed or absorbed (read from `changed`, or gone).
    shadowed: Vec<bool>,
    /// Per own face: its cluster (as ids of 128 bits) and its steps.
    placed: Vec<(u128, Vec<Regroup>)>,
}

impl Clusters {
    /// Where each face goes, one after another (each sees the ones before).
    pub fn plan(&self, faces: &[&[f32]]) -> Vec<Placement> {
        let mut p = Planner {
            held: self,
            faces,
            changed: HashMap::new(),
            shadowed: vec![false; self.ids.len()],
            placed: Vec::with_capacity(faces.len()),
        };
        for i in 0..faces.len() {
            p.placed.push((0, Vec::new()));
            p.place(i);
        }
        let placed = p.placed.into_iter();
        placed.map(|(c, steps)| Placement { cluster: id_from_bits(c), steps }).collect()
    }

    /// Makes the memory what a written placement left: its steps, then
    /// the face in its cluster.
    pub fn apply(&mut self, face_id: &str, p: &Placement, values: &[f32], external_id: Option<&str>) -> bool {
        for step in &p.steps {
            match step {
                Regroup::Merge { from, into } => self.relabel(from, into),
                Regroup::Move { face, to } => self.regroup(face, to),
            }
        }
        self.insert(face_id, &p.cluster, values, external_id)
    }
}

impl Planner<'_> {
    fn values(&self, m: Member) -> &[f32] {
        match m {
            Member::Held(f) => &self.held.faces[&f].values,
            Member::Own(i) => self.faces[i],
        }
    }

    /// A cluster's sum and size as the plan sees it.
    fn peek(&self, id: u128) -> (&[f32], usize) {
        if let Some(g) = self.changed.get(&id) {
            return (&g.sum, g.members.len());
        }
        let s = self.held.by_id[&id];
        (self.held.sum(s), self.held.members[s as usize].len())
    }

    /// Takes a cluster out of the plan's view, to change it and put it back
    /// (or not, when absorbed); empty when new.
    fn take(&mut self, id: u128) -> Group {
        if let Some(g) = self.changed.remove(&id) {
            return g;
        }
        match self.held.by_id.get(&id) {
            Some(&s) => {
                self.shadowed[s as usize] = true;
                let members = self.held.members[s as usize].iter().map(|f| Member::Held(*f)).collect();
                Group { sum: self.held.sum(s).to_vec(), members }
            }
            None => Group { sum: vec![0.0; self.held.dim], members: Vec::new() },
        }
    }

    /// Every cluster but `skip`, scored by its average similarity to `x`:
    /// the best, and all that reach the threshold.
    fn scan(&self, x: &[f32], skip: Option<u128>) -> (Option<(u128, f32)>, Vec<u128>) {
        let (mut best, mut reach): (Option<(u128, f32)>, Vec<u128>) = (None, Vec::new());
        let mut consider = |id: u128, sum: &[f32], size: usize| {
            let a = dot(x, sum) / size as f32;
            if a >= self.held.join {
                reach.push(id);
            }
            if best.is_none_or(|(_, b)| a > b) {
                best = Some((id, a));
            }
        };
        let held = self.held;
        for (s, &id) in held.ids.iter().enumerate() {
            if id != 0 && !self.shadowed[s] && Some(id) != skip {
                consider(id, held.sum(s as u32), held.members[s].len());
            }
        }
        for (&id, g) in &self.changed {
            if Some(id) != skip && !g.members.is_empty() {
                consider(id, &g.sum, g.members.len());
            }
        }
        (best, reach)
    }

    /// Places the plan's `i`th face, then moves the misfits it left.
    fn place(&mut self, i: usize) {
        let to = self.arrive(Member::Own(i), None, i);
        self.placed[i].0 = to;
        let (mut pending, mut moves) = (vec![to], 0);
        while let Some(c) = pending.pop() {
            if moves == MOST_MOVES {
                break;
            }
            let Some(m) = self.misfit(c) else { continue };
            moves += 1;
            let mut g = self.take(c);
            g.members.retain(|x| *x != m);
            g.sum.iter_mut().zip(self.values(m)).for_each(|(s, v)| *s -= v);
            self.changed.insert(c, g);
            let to = self.arrive(m, Some(c), i);
            match m {
                Member::Own(j) => self.placed[j].0 = to,
                Member::Held(f) => self.placed[i].1.push(Regroup::Move { face: id_from_bits(f), to: id_from_bits(to) }),
            }
            pending.extend([c, to]);
        }
    }

    /// Puts face `m` in the cluster it reaches best (not `skip`), or a new
    /// one; the grown cluster absorbs (or is absorbed by) every cluster it
    /// now reaches. Its cluster, with the merges among `i`'s steps.
    fn arrive(&mut self, m: Member, skip: Option<u128>, i: usize) -> u128 {
        let join = self.held.join;
        let (best, mut reach) = self.scan(self.values(m), skip);
        let mut target = match best {
            Some((c, a)) if a >= join => c,
            _ => id_bits(&new_id()).unwrap_or(1),
        };
        let mut g = self.take(target);
        g.sum.iter_mut().zip(self.values(m)).for_each(|(s, v)| *s += v);
        g.members.push(m);
        reach.retain(|c| *c != target);
        loop {
            let n = g.members.len();
            let mut most: Option<(u128, f32)> = None;
            for &c in &reach {
                let (sum, size) = self.peek(c);
                let a = dot(&g.sum, sum) / (n * size) as f32;
                if a >= join && most.is_none_or(|(_, b)| a > b) {
                    most = Some((c, a));
                }
            }
            let Some((other, _)) = most else { break };
            reach.retain(|c| *c != other);
            let o = self.take(other);
            // The larger keeps its id (ties: the smaller id).
            let (keep, drop) = match (o.members.len(), Reverse(other)) > (n, Reverse(target)) {
                true => (other, target),
                false => (target, other),
            };
            self.placed[i].1.push(Regroup::Merge { from: id_from_bits(drop), into: id_from_bits(keep) });
            g.sum.iter_mut().zip(&o.sum).for_each(|(s, v)| *s += v);
            g.members.extend(o.members);
            target = keep;
        }
        self.changed.insert(target, g);
        target
    }

    /// The face of a (changed) cluster of three or more whose average
    /// similarity to the rest is lowest, when that is below the threshold.
    fn misfit(&self, c: u128) -> Option<Member> {
        let g = self.changed.get(&c)?;
        let n = g.members.len();
        if n < 3 {
            return None;
        }
        let loo = |m: &Member| {
            let x = self.values(*m);
            (dot(&g.sum, x) - dot(x, x)) / (n - 1) as f32
        };
        let worst = g.members.iter().map(|m| (*m, loo(m))).min_by(|a, b| a.1.total_cmp(&b.1))?;
        (worst.1 < self.held.join).then_some(worst.0)
    }
}
