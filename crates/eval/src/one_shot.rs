//! One-shot open-set identification on an LFW-layout folder (`visage eval
//! one-shot`): each person with two or more photos is enrolled from one photo
//! and searched with another; persons with a single photo are never enrolled
//! and come as strangers. A photo that fails enrollment (no face, or a face
//! below the service's size and sharpness gates) leaves its person out of the
//! gallery, and that person's probe counts as not found.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Result, ensure};
use serde::Serialize;

use visage_service::domain::similarity::dot;

/// The probes and the gallery, by path.
#[derive(Debug, Clone, PartialEq)]
pub struct Protocol {
    /// (enrolled photo, probe photo) per person.
    pub persons: Vec<(PathBuf, PathBuf)>,
    pub strangers: Vec<PathBuf>,
}

fn photos(root: &Path, name: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root.join(name))
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The persons `names` (see [`crate::persons_named`]), in name
/// order: those with two or more photos are enrolled from the first and
/// probed with the second, at most `max_persons`; those with one photo are
/// strangers, at most `max_strangers`.
pub fn protocol(root: &Path, names: BTreeSet<String>, max_persons: usize, max_strangers: usize) -> Result<Protocol> {
    let (mut persons, mut strangers) = (Vec::new(), Vec::new());
    for name in names {
        let p = photos(root, &name);
        match p.as_slice() {
            [only] if strangers.len() < max_strangers => strangers.push(only.clone()),
            [first, second, ..] if persons.len() < max_persons => persons.push((first.clone(), second.clone())),
            _ => {}
        }
    }
    ensure!(!persons.is_empty(), "no person with two photos under {}", root.display());
    Ok(Protocol { persons, strangers })
}

/// What the gallery answers at one threshold.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcome {
    pub threshold: f32,
    /// Probes of enrolled persons named right, over all persons (not enrollable included).
    pub found: f64,
    /// Probes of persons named as someone else.
    pub wrong: f64,
    /// Strangers named as someone.
    pub strangers_accepted: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub persons: usize,
    pub strangers: usize,
    /// Persons whose enrollment photo failed the gates.
    pub not_enrollable: usize,
    /// Probes (genuine or stranger) where no face was found.
    pub probes_without_face: usize,
    pub outcomes: Vec<Outcome>,
}

/// Scores the protocol: `enrolled[i]` is person i's gallery embedding (None:
/// not enrollable), `probes[i]` their probe's, `strangers` the strangers'.
pub fn score(
    enrolled: &[Option<Vec<f32>>],
    probes: &[Option<Vec<f32>>],
    strangers: &[Option<Vec<f32>>],
    thresholds: &[f32],
) -> Report {
    let gallery: Vec<(usize, &Vec<f32>)> =
        enrolled.iter().enumerate().filter_map(|(i, e)| Some((i, e.as_ref()?))).collect();
    let best = |q: &[f32]| gallery.iter().map(|(i, e)| (*i, dot(q, e))).max_by(|a, b| a.1.total_cmp(&b.1));
    let genuine: Vec<Option<(bool, f32)>> =
        probes.iter().enumerate().map(|(i, q)| best(q.as_ref()?).map(|(who, s)| (who == i, s))).collect();
    let stranger: Vec<Option<f32>> = strangers.iter().map(|q| best(q.as_ref()?).map(|b| b.1)).collect();
    let rate = |n: usize, d: usize| n as f64 / d.max(1) as f64;
    let outcomes = thresholds
        .iter()
        .map(|&t| Outcome {
            threshold: t,
            found: rate(genuine.iter().flatten().filter(|(right, s)| *right && *s >= t).count(), probes.len()),
            wrong: rate(genuine.iter().flatten().filter(|(right, s)| !*right && *s >= t).count(), probes.len()),
            strangers_accepted: rate(stranger.iter().flatten().filter(|s| **s >= t).count(), strangers.len()),
        })
        .collect();
    Report {
        persons: enrolled.len(),
        strangers: strangers.len(),
        not_enrollable: enrolled.iter().filter(|e| e.is_none()).count(),
        probes_without_face: probes.iter().chain(strangers).filter(|p| p.is_none()).count(),
        outcomes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_wrong_and_strangers_are_counted_over_everyone() {
        let v = |x: f32, y: f32| Some(vec![x, y]);
        // Person 0 enrolled at (1, 0), person 1 not enrollable, person 2 at (0, 1).
        let enrolled = vec![v(1.0, 0.0), None, v(0.0, 1.0)];
        // Probe 0 is found (0.8); probe 1 resembles person 0 (wrong at 0.6); probe 2 has no face.
        let probes = vec![v(0.8, 0.6), v(0.6, 0.8), None];
        let strangers = vec![v(0.707, 0.707), v(-1.0, 0.0)];
        let r = score(&enrolled, &probes, &strangers, &[0.5, 0.7, 0.9]);
        assert_eq!((r.persons, r.strangers, r.not_enrollable, r.probes_without_face), (3, 2, 1, 1));
        // Probe 1's best is person 2 at 0.8: wrong.
        assert_eq!(
            r.outcomes[0],
            Outcome { threshold: 0.5, found: 1.0 / 3.0, wrong: 1.0 / 3.0, strangers_accepted: 0.5 }
        );
        assert_eq!(
            r.outcomes[1],
            Outcome { threshold: 0.7, found: 1.0 / 3.0, wrong: 1.0 / 3.0, strangers_accepted: 0.5 }
        );
        assert_eq!(r.outcomes[2], Outcome { threshold: 0.9, found: 0.0, wrong: 0.0, strangers_accepted: 0.0 });
    }

    #[test]
    fn the_protocol_takes_first_and_second_photos_and_singletons() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for (name, n) in [("Ann", 3), ("Bob", 1), ("Cid", 2), ("Dee", 1)] {
            std::fs::create_dir_all(dir.join(name)).unwrap();
            for i in 1..=n {
                std::fs::write(dir.join(name).join(format!("{name}_{i:04}.jpg")), b"x").unwrap();
            }
        }
        let p = protocol(dir, crate::persons_named(dir, None).unwrap(), 10, 1).unwrap();
        assert_eq!(
            p.persons,
            vec![
                (dir.join("Ann/Ann_0001.jpg"), dir.join("Ann/Ann_0002.jpg")),
                (dir.join("Cid/Cid_0001.jpg"), dir.join("Cid/Cid_0002.jpg"))
            ]
        );
        assert_eq!(p.strangers, vec![dir.join("Bob/Bob_0001.jpg")]);
        let names: BTreeSet<String> = ["Cid".to_string(), "Dee".to_string()].into();
        let p = protocol(dir, names, 10, 10).unwrap();
        assert_eq!((p.persons.len(), p.strangers.len()), (1, 1));
    }
}
