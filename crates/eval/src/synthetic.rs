//! A realistic synthetic gallery for measuring 1:N search at sizes no photo
//! collection reaches. Identities and photos are drawn from Gaussians fitted
//! to real embeddings (a two-covariance, PLDA-like model): an identity's
//! centre from the between-person covariance around the real mean, each
//! photo from the within-person covariance around its centre (scaled by a
//! per-photo quality factor), then normalised. The fit ships as
//! `models/reference/<embedder>.shape` (numbers only, made by `visage eval
//! shape` from an enrolled photo set: LFW View 1 DevTrain). An isotropic
//! model with the same cosine means and spreads is much harder for graphs
//! than real embeddings are (bench/ann-choice/README.md): the covariance
//! matters, and real faces mixed in confirm the fitted one.
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context as _, Result, bail, ensure};
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};

use visage_service::domain::similarity::{dot, l2_normalize};

const MAGIC: &[u8; 8] = b"VISAGESH";

/// Scales of the fitted covariances and the photo-quality spread that put
/// the synthetic cosines on LFW's (sface+dlib, DevTrain: same-person mean
/// 0.834 sd 0.051, different-person 0.535 sd 0.046; the generator gives
/// 0.846 / 0.041 and 0.537 / 0.053).
pub const BETWEEN: f32 = 0.85;
pub const WITHIN: f32 = 0.95;
pub const SPREAD: f32 = 0.35;

/// The fitted model: the mean and the two covariances.
pub struct Shape {
    pub dim: usize,
    mean: Vec<f64>,
    between: Vec<f64>,
    within: Vec<f64>,
    /// Faces and persons fitted to.
    pub faces: usize,
    pub persons: usize,
}

impl Shape {
    /// Fits the model to real embeddings grouped by person.
    pub fn fit(by_person: &[Vec<Vec<f32>>]) -> Result<Self> {
        let dim = by_person.iter().flatten().next().map(Vec::len).context("no embeddings to fit")?;
        let faces: usize = by_person.iter().map(Vec::len).sum();
        let mut mean = vec![0f64; dim];
        for v in by_person.iter().flatten() {
            ensure!(v.len() == dim, "embeddings of several lengths");
            mean.iter_mut().zip(v).for_each(|(m, x)| *m += f64::from(*x) / faces as f64);
        }
        let (mut between, mut within, mut dof) = (vec![0f64; dim * dim], vec![0f64; dim * dim], 0usize);
        let add = |s: &mut [f64], d: &[f64], w: f64| {
            for i in 0..dim {
                for j in 0..=i {
                    s[i * dim + j] += w * d[i] * d[j];
                }
            }
        };
        let persons = by_person.iter().filter(|f| !f.is_empty()).count();
        for faces in by_person.iter().filter(|f| !f.is_empty()) {
            let n = faces.len() as f64;
            let centre: Vec<f64> = (0..dim).map(|i| faces.iter().map(|v| f64::from(v[i])).sum::<f64>() / n).collect();
            let d: Vec<f64> = centre.iter().zip(&mean).map(|(c, m)| c - m).collect();
            add(&mut between, &d, 1.0 / persons as f64);
            if faces.len() > 1 {
                for v in faces {
                    let d: Vec<f64> = v.iter().zip(&centre).map(|(x, c)| f64::from(*x) - c).collect();
                    add(&mut within, &d, 1.0);
                }
                dof += faces.len() - 1;
            }
        }
        ensure!(
            dof > dim,
            "{dof} within-person degrees of freedom fit no {dim}-d covariance: more persons with several photos are needed"
        );
        within.iter_mut().for_each(|x| *x /= dof as f64);
        Ok(Self { dim, mean, between, within, faces, persons })
    }

    /// Writes the mean and the lower triangles of the covariances (f32).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
        w.write_all(MAGIC)?;
        for n in [self.dim, self.faces, self.persons] {
            w.write_all(&(n as u32).to_le_bytes())?;
        }
        let mut put = |x: f64| w.write_all(&(x as f32).to_le_bytes());
        self.mean.iter().try_for_each(|&m| put(m))?;
        for s in [&self.between, &self.within] {
            for i in 0..self.dim {
                (0..=i).try_for_each(|j| put(s[i * self.dim + j]))?;
            }
        }
        w.flush()?;
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Self> {
        let mut bytes = Vec::new();
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?.read_to_end(&mut bytes)?;
        ensure!(bytes.len() >= 20 && &bytes[..8] == MAGIC, "{} is not a shape file", path.display());
        let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let (dim, faces, persons) = (word(8) as usize, word(12) as usize, word(16) as usize);
        let tri = dim * (dim + 1) / 2;
        if bytes.len() != 20 + 4 * (dim + 2 * tri) {
            bail!("{} is truncated", path.display());
        }
        let mut at = 20;
        let mut next = || {
            let x = f64::from(f32::from_bits(word(at)));
            at += 4;
            x
        };
        let mean: Vec<f64> = (0..dim).map(|_| next()).collect();
        let mut full = || {
            let mut s = vec![0f64; dim * dim];
            for i in 0..dim {
                for j in 0..=i {
                    s[i * dim + j] = next();
                }
            }
            s
        };
        let (between, within) = (full(), full());
        Ok(Self { dim, mean, between, within, faces, persons })
    }

    /// The generator with the covariances scaled by `between` and `within`
    /// (standard deviations) and photo quality spread by `spread`.
    pub fn maker(&self, between: f32, within: f32, spread: f32) -> Maker {
        Maker {
            dim: self.dim,
            mean: self.mean.iter().map(|&m| m as f32).collect(),
            between: cholesky(&self.between, self.dim, f64::from(between)),
            within: cholesky(&self.within, self.dim, f64::from(within)),
            spread,
        }
    }
}

/// The lower Cholesky factor of `k^2 * s` (lower triangle given), with a
/// small ridge for the directions the fit left flat.
fn cholesky(s: &[f64], n: usize, k: f64) -> Vec<f32> {
    let mut l = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|m| l[i * n + m] * l[j * n + m]).sum();
            let a = k * k * s[i * n + j] + if i == j { 1e-7 } else { 0.0 };
            if i == j {
                l[i * n + i] = (a - sum).max(1e-12).sqrt();
            } else {
                l[i * n + j] = (a - sum) / l[j * n + j];
            }
        }
    }
    l.into_iter().map(|v| v as f32).collect()
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut SmallRng) -> f32 {
    let u: f32 = rng.random::<f32>().max(f32::MIN_POSITIVE);
    let v: f32 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

/// Draws identities and photos.
pub struct Maker {
    pub dim: usize,
    mean: Vec<f32>,
    between: Vec<f32>,
    within: Vec<f32>,
    spread: f32,
}

impl Maker {
    /// `l z` for a standard normal `z`.
    fn draw(&self, l: &[f32], rng: &mut SmallRng) -> Vec<f32> {
        let z: Vec<f32> = (0..self.dim).map(|_| normal(rng)).collect();
        (0..self.dim).map(|i| dot(&l[i * self.dim..i * self.dim + i + 1], &z[..i + 1])).collect()
    }

    /// An identity's centre.
    pub fn identity(&self, rng: &mut SmallRng) -> Vec<f32> {
        let d = self.draw(&self.between, rng);
        self.mean.iter().zip(d).map(|(m, d)| m + d).collect()
    }

    /// A photo of the identity: a unit embedding.
    pub fn photo(&self, identity: &[f32], rng: &mut SmallRng) -> Vec<f32> {
        let r = 1.0 + self.spread * (2.0 * rng.random::<f32>() - 1.0);
        let d = self.draw(&self.within, rng);
        let mut x: Vec<f32> = identity.iter().zip(d).map(|(c, d)| c + r * d).collect();
        l2_normalize(&mut x);
        x
    }
}

/// A probe: another photo of an enrolled person, or a stranger.
pub struct Probe {
    pub vector: Vec<f32>,
    /// The enrolled person it shows; None for a stranger.
    pub person: Option<u32>,
    /// A real face (not drawn).
    pub real: bool,
}

/// A gallery: rows of unit embeddings with their persons, and probes.
pub struct Synthetic {
    pub dim: usize,
    pub rows: Vec<f32>,
    pub person: Vec<u32>,
    pub probes: Vec<Probe>,
    /// Real persons enrolled and their genuine probes, real strangers.
    pub real: (usize, usize, usize),
}

fn person_seed(p: usize) -> u64 {
    1_000_003 * p as u64 + 11
}

/// How many faces each person has: 1, 2 or 3 (50 / 30 / 20 %), `faces` in all.
fn faces_per_person(faces: usize) -> Vec<usize> {
    let mut rng = SmallRng::seed_from_u64(7);
    let (mut counts, mut total) = (Vec::new(), 0);
    while total < faces {
        let n = match rng.random_range(0..10) {
            0..=4 => 1,
            5..=7 => 2,
            _ => 3,
        };
        let n = usize::min(n, faces - total);
        counts.push(n);
        total += n;
    }
    counts
}

/// `faces` drawn faces and `probes` drawn probes (half of them new photos of
/// enrolled persons, half strangers), on `threads` threads; deterministic.
/// Room is kept for `room` more rows (real faces mixed in later).
pub fn generate(maker: &Maker, faces: usize, probes: usize, threads: usize, room: usize) -> Synthetic {
    let counts = faces_per_person(faces);
    let threads = threads.max(1);
    let chunk = counts.len().div_ceil(threads).max(1);
    let parts: Vec<Vec<f32>> = std::thread::scope(|s| {
        let handles: Vec<_> = counts
            .chunks(chunk)
            .enumerate()
            .map(|(t, part)| {
                s.spawn(move || {
                    let mut rows = Vec::with_capacity(part.iter().sum::<usize>() * maker.dim);
                    for (i, &n) in part.iter().enumerate() {
                        let mut rng = SmallRng::seed_from_u64(person_seed(t * chunk + i));
                        let id = maker.identity(&mut rng);
                        (0..n).for_each(|_| rows.extend(maker.photo(&id, &mut rng)));
                    }
                    rows
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut rows = Vec::with_capacity((faces + room) * maker.dim);
    parts.into_iter().for_each(|p| rows.extend(p));
    let person: Vec<u32> = counts.iter().enumerate().flat_map(|(p, &n)| std::iter::repeat_n(p as u32, n)).collect();
    let probes = (0..probes)
        .map(|i| {
            let mut rng = SmallRng::seed_from_u64(0xfeed + i as u64);
            if i % 2 == 0 && !counts.is_empty() {
                // The person's identity again, from their seed; a new photo.
                let p = rng.random_range(0..counts.len());
                let id = maker.identity(&mut SmallRng::seed_from_u64(person_seed(p)));
                Probe { vector: maker.photo(&id, &mut rng), person: Some(p as u32), real: false }
            } else {
                let id = maker.identity(&mut rng);
                Probe { vector: maker.photo(&id, &mut rng), person: None, real: false }
            }
        })
        .collect();
    Synthetic { dim: maker.dim, rows, person, probes, real: (0, 0, 0) }
}

impl Synthetic {
    pub fn len(&self) -> usize {
        self.person.len()
    }

    pub fn is_empty(&self) -> bool {
        self.person.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.rows[i * self.dim..(i + 1) * self.dim]
    }

    /// Mixes real persons in: each person's first face enrolled and their
    /// other faces genuine probes; persons with one face probe as strangers.
    pub fn mix_real(&mut self, by_person: &[Vec<Vec<f32>>]) {
        let mut next = self.person.last().map_or(0, |p| p + 1);
        for faces in by_person.iter().filter(|f| f.first().is_some_and(|v| v.len() == self.dim)) {
            if faces.len() == 1 {
                self.probes.push(Probe { vector: faces[0].clone(), person: None, real: true });
                self.real.2 += 1;
                continue;
            }
            self.rows.extend_from_slice(&faces[0]);
            self.person.push(next);
            self.real.0 += 1;
            for f in &faces[1..] {
                self.probes.push(Probe { vector: f.clone(), person: Some(next), real: true });
                self.real.1 += 1;
            }
            next += 1;
        }
    }

    /// Same-person and different-person cosines: (mean, sd) of each.
    pub fn cosines(&self) -> ((f32, f32), (f32, f32)) {
        let mean_sd = |x: &[f32]| {
            let m = x.iter().sum::<f32>() / x.len().max(1) as f32;
            (m, (x.iter().map(|v| (v - m) * (v - m)).sum::<f32>() / x.len().max(1) as f32).sqrt())
        };
        let mut genuine = Vec::new();
        for i in 1..self.len().min(200_000) {
            if self.person[i] == self.person[i - 1] {
                genuine.push(dot(self.row(i), self.row(i - 1)));
            }
        }
        let mut rng = SmallRng::seed_from_u64(3);
        let mut impostor = Vec::new();
        while impostor.len() < 100_000 && self.len() > 1 {
            let (i, j) = (rng.random_range(0..self.len()), rng.random_range(0..self.len()));
            if self.person[i] != self.person[j] {
                impostor.push(dot(self.row(i), self.row(j)));
            }
        }
        (mean_sd(&genuine), mean_sd(&impostor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Persons around two directions with small within-person noise.
    fn toy() -> Vec<Vec<Vec<f32>>> {
        let mut rng = SmallRng::seed_from_u64(5);
        (0..400)
            .map(|p| {
                let centre: Vec<f32> = (0..8).map(|i| if i == p % 8 { 1.0 } else { 0.2 * normal(&mut rng) }).collect();
                (0..3)
                    .map(|_| {
                        let mut v: Vec<f32> = centre.iter().map(|c| c + 0.1 * normal(&mut rng)).collect();
                        l2_normalize(&mut v);
                        v
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_fitted_shape_round_trips_and_draws_persons_tighter_than_strangers() {
        let shape = Shape::fit(&toy()).unwrap();
        assert_eq!((shape.dim, shape.faces, shape.persons), (8, 1200, 400));
        let path = std::env::temp_dir().join(format!("visage-shape-{}.bin", std::process::id()));
        shape.save(&path).unwrap();
        let back = Shape::load(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!((back.dim, back.faces, back.persons), (8, 1200, 400));
        assert!(back.within.iter().zip(&shape.within).all(|(a, b)| (a - b).abs() < 1e-6));
        let g = generate(&back.maker(1.0, 1.0, 0.0), 3000, 10, 2, 0);
        assert_eq!((g.len(), g.rows.len(), g.probes.len()), (3000, 3000 * 8, 10));
        assert!(g.rows.chunks(8).all(|r| (dot(r, r) - 1.0).abs() < 1e-4));
        let ((same, _), (different, _)) = g.cosines();
        assert!(same > different + 0.3, "same {same}, different {different}");
        // Deterministic: the same draw again; a genuine probe is near its person.
        assert_eq!(generate(&back.maker(1.0, 1.0, 0.0), 3000, 10, 1, 0).rows, g.rows);
        let p = &g.probes[0];
        let person = p.person.unwrap();
        let best = (0..g.len()).filter(|&i| g.person[i] == person).map(|i| dot(g.row(i), &p.vector));
        assert!(best.fold(f32::MIN, f32::max) > 0.8);
    }

    #[test]
    fn a_truncated_or_foreign_shape_file_is_refused() {
        let path = std::env::temp_dir().join(format!("visage-shape-bad-{}.bin", std::process::id()));
        std::fs::write(&path, b"VISAGESH\x08\0\0\0\x01\0\0\0\x01\0\0\0\0\0").unwrap();
        assert!(Shape::load(&path).is_err());
        std::fs::write(&path, b"not a shape").unwrap();
        assert!(Shape::load(&path).is_err());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn real_persons_are_enrolled_once_and_probe_with_their_other_faces() {
        let mut g = generate(&Shape::fit(&toy()).unwrap().maker(1.0, 1.0, 0.0), 10, 0, 1, 3);
        let real = vec![vec![vec![1.0; 8], vec![0.5; 8]], vec![vec![0.1; 8]], vec![vec![0.0; 3]]];
        g.mix_real(&real);
        assert_eq!(g.real, (1, 1, 1));
        assert_eq!(g.len(), 11);
        assert_eq!(g.probes.len(), 2);
        assert_eq!(g.probes[0].person, Some(g.person[10]));
        assert_eq!(g.probes[1].person, None);
    }
}
