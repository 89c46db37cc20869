//! What identify would answer for each face of a labelled set when that
//! face is the probe and the others are the gallery (leave-one-out): named,
//! unknown, or ambiguous, by the same rule the service applies to one face
//! (the best person above the threshold is named unless a second person is
//! above it too, less than the margin behind). Run over the same faces with
//! two models, it shows which answers a change of model changes.
use crate::domain::similarity::dot;

/// The 1:N decision rule of one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    pub threshold: f32,
    pub margin: f32,
}

/// One leave-one-out answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The person at this index.
    Named(u32),
    Unknown,
    Ambiguous,
}

/// Embeddings of one dimension, each with its person's index.
#[derive(Debug, Clone, Default)]
pub struct Faces {
    dim: usize,
    values: Vec<f32>,
    persons: Vec<u32>,
}

impl Faces {
    pub fn new(dim: usize) -> Self {
        Self { dim, ..Self::default() }
    }

    /// Adds a face; false (nothing added) when the length is not `dim`.
    pub fn push(&mut self, values: &[f32], person: u32) -> bool {
        if values.len() != self.dim || self.dim == 0 {
            return false;
        }
        self.values.extend_from_slice(values);
        self.persons.push(person);
        true
    }

    pub fn len(&self) -> usize {
        self.persons.len()
    }

    pub fn is_empty(&self) -> bool {
        self.persons.is_empty()
    }

    pub fn person(&self, i: usize) -> u32 {
        self.persons[i]
    }

    fn vector(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// Identify's answer for face `probe` against every other face.
    pub fn leave_one_out(&self, probe: usize, rule: Rule) -> Answer {
        let q = self.vector(probe);
        // The two best persons by their best face (distinct persons).
        let (mut first, mut second): ((u32, f32), (u32, f32)) = ((u32::MAX, f32::MIN), (u32::MAX, f32::MIN));
        for j in (0..self.len()).filter(|&j| j != probe) {
            let (p, s) = (self.persons[j], dot(q, self.vector(j)));
            if p == first.0 {
                first.1 = first.1.max(s);
            } else if s > first.1 {
                // `p` takes the lead; the old leader is second (whether or
                // not `p` was second before).
                second = first;
                first = (p, s);
            } else if p == second.0 {
                second.1 = second.1.max(s);
            } else if s > second.1 {
                second = (p, s);
            }
        }
        answer(first, second, rule)
    }
}

fn answer(first: (u32, f32), second: (u32, f32), rule: Rule) -> Answer {
    if first.0 == u32::MAX || first.1 < rule.threshold {
        return Answer::Unknown;
    }
    if second.0 != u32::MAX && second.1 >= rule.threshold && first.1 - second.1 < rule.margin {
        return Answer::Ambiguous;
    }
    Answer::Named(first.0)
}

/// At most `budget / faces` probes, spread evenly over `0..faces` (all of
/// them when the budget allows).
pub fn spread(faces: usize, budget: usize) -> Vec<usize> {
    let probes = (budget / faces.max(1)).clamp(1, faces.max(1)).min(faces);
    (0..probes).map(|k| k * faces / probes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(angle: f32) -> [f32; 2] {
        [angle.cos(), angle.sin()]
    }

    /// Faces at these angles (radians), with these persons.
    fn faces(list: &[(f32, u32)]) -> Faces {
        let mut f = Faces::new(2);
        for &(a, p) in list {
            assert!(f.push(&unit(a), p));
        }
        f
    }

    const RULE: Rule = Rule { threshold: 0.9, margin: 0.02 };

    #[test]
    fn the_probe_never_matches_itself() {
        // Alone, a face is unknown: its own copy in the set is left out.
        let f = faces(&[(0.0, 0), (2.0, 1)]);
        assert_eq!(f.leave_one_out(0, RULE), Answer::Unknown);
        // With another face of its person near, it is named.
        let f = faces(&[(0.0, 0), (0.1, 0), (2.0, 1)]);
        assert_eq!(f.leave_one_out(0, RULE), Answer::Named(0));
    }

    #[test]
    fn a_close_second_person_makes_it_ambiguous_and_a_margin_of_zero_does_not() {
        // cos 0.10 = 0.995, cos 0.12 = 0.9928: 0.0022 apart.
        let f = faces(&[(0.0, 0), (0.10, 1), (-0.12, 2)]);
        assert_eq!(f.leave_one_out(0, RULE), Answer::Ambiguous);
        assert_eq!(f.leave_one_out(0, Rule { margin: 0.0, ..RULE }), Answer::Named(1));
        // The second person below the threshold does not count.
        let f = faces(&[(0.0, 0), (0.10, 1), (-0.6, 2)]);
        assert_eq!(f.leave_one_out(0, RULE), Answer::Named(1));
    }

    #[test]
    fn the_two_best_are_distinct_persons_by_their_best_faces() {
        // Person 1 has the two best faces; person 2 is the real second.
        let orders: [&[(f32, u32)]; 3] = [
            &[(0.0, 0), (0.05, 1), (0.08, 1), (0.09, 2)],
            &[(0.0, 0), (0.09, 2), (0.08, 1), (0.05, 1)],
            &[(0.0, 0), (0.08, 1), (0.09, 2), (0.05, 1)],
        ];
        for list in orders {
            let f = faces(list);
            // 0.9988 vs 0.9960: within the margin.
            assert_eq!(f.leave_one_out(0, RULE), Answer::Ambiguous, "{list:?}");
            let wide = Rule { margin: 0.002, ..RULE };
            assert_eq!(f.leave_one_out(0, wide), Answer::Named(1), "{list:?}");
        }
    }

    #[test]
    fn a_second_rising_past_the_leader_takes_the_lead() {
        // Person 2's first face is third best, its second face the best.
        let f = faces(&[(0.0, 0), (0.3, 2), (0.2, 1), (0.01, 2)]);
        assert_eq!(f.leave_one_out(0, Rule { threshold: 0.9, margin: 0.0 }), Answer::Named(2));
        assert_eq!(f.leave_one_out(0, Rule { threshold: 0.9, margin: 0.01 }), Answer::Named(2));
        // 1 - cos 0.2 = 0.0199 behind the leader's 0.99995.
        assert_eq!(f.leave_one_out(0, Rule { threshold: 0.9, margin: 0.03 }), Answer::Ambiguous);
    }

    #[test]
    fn wrong_lengths_are_refused_and_probes_spread_evenly() {
        let mut f = Faces::new(2);
        assert!(!f.push(&[1.0, 0.0, 0.0], 0));
        assert!(f.is_empty());
        assert_eq!(spread(10, 1000), (0..10).collect::<Vec<_>>());
        assert_eq!(spread(10, 50), vec![0, 2, 4, 6, 8]);
        assert_eq!(spread(10, 3), vec![0]);
        assert!(spread(0, 100).is_empty());
    }
}
