//! Which approximate-nearest-neighbour library should visage's 1:N index
//! use? usearch (C++ with Rust bindings; quantisation, deletions, saving and
//! memory-mapped loading) against hnsw_rs (pure Rust), on one realistic
//! synthetic gallery, each measured against exact search: recall@1 on
//! genuine probes, agreement of the known/unknown decision, latency, build
//! time on every core, memory, saving and loading.
//!
//! The gallery: identities shaped like the default embedder's (sface+dlib,
//! 256-d) on LFW View 1 DevTrain, whose same-person cosines have mean 0.834
//! and sd 0.051 and different-person cosines mean 0.535 and sd 0.046
//! (`models/reference/sface+dlib.json`). A face is
//! `normalise(a u0 + sum_j (b c_j + s n_j) e_j)`: `u0` the direction all
//! faces share, `c` the identity and `n` the photo, both Gaussian in an
//! `effective`-dimensional subspace (`e_j` orthonormal, randomly placed);
//! `a^2 = 0.535` and `b^2 = 0.299` put the two means where LFW has them, the
//! effective dimension (102) their spread. Persons have 1 to 3 faces;
//! probes are new photos of enrolled persons (genuine) and persons never
//! enrolled (strangers), never copies of gallery vectors.
//!
//! `cargo run --release -- --faces 1000000 --probes 2000` (see `--help`).
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

const A2: f32 = 0.535;
const B2: f32 = 0.299;
/// Top faces asked of each index (the service groups them by person).
const K: usize = 16;

struct Args {
    faces: usize,
    probes: usize,
    dim: usize,
    effective: usize,
    threshold: f32,
    spread: f32,
    shape_only: bool,
    threads: usize,
    variants: String,
    /// Real embeddings (u32 person, then dim f32s, little-endian, per face) to fit the shape to.
    fit: Option<std::path::PathBuf>,
    between: f32,
    within: f32,
    /// Real embeddings mixed in: each person's first face enrolled, their
    /// other faces genuine probes; persons with one face stranger probes.
    real: Option<std::path::PathBuf>,
    dir: std::path::PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        faces: 200_000,
        probes: 2000,
        dim: 256,
        effective: 220,
        threshold: 0.735,
        spread: 0.45,
        shape_only: false,
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        fit: None,
        between: 1.0,
        within: 1.0,
        real: None,
        variants: "f32:16:64,f16:16:64,i8:16:64,i8s:16:64,i8s:16:128,i8s:16:256,i8s:32:256,exact-i8s,hnsw_rs:16:64"
            .into(),
        dir: std::env::temp_dir(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--faces" => a.faces = value().parse().expect("--faces N"),
            "--probes" => a.probes = value().parse().expect("--probes N"),
            "--dim" => a.dim = value().parse().expect("--dim N"),
            "--effective" => a.effective = value().parse().expect("--effective N"),
            "--threshold" => a.threshold = value().parse().expect("--threshold T"),
            "--threads" => a.threads = value().parse().expect("--threads N"),
            "--spread" => a.spread = value().parse().expect("--spread X"),
            "--shape-only" => a.shape_only = true,
            "--variants" => a.variants = value(),
            "--fit" => a.fit = Some(value().into()),
            "--real" => a.real = Some(value().into()),
            "--between" => a.between = value().parse().expect("--between X"),
            "--within" => a.within = value().parse().expect("--within X"),
            "--dir" => a.dir = value().into(),
            _ => {
                println!(
                    "ann-choice [--faces N] [--probes N] [--dim 256] [--effective 220] [--threshold 0.735] \
                     [--threads N] [--spread 0.45] [--shape-only] [--fit REAL.f32 [--between 1] [--within 1]] [--real OTHER.f32] [--variants f32|f16|i8|i8s:M:EF,exact-i8s,hnsw_rs:M:EF,...] [--dir FOLDER for the saved indexes]"
                );
                std::process::exit(2);
            }
        }
    }
    a
}

/// Orthonormal vectors (Gram-Schmidt of Gaussian ones): `u0` then the subspace.
struct Shape {
    dim: usize,
    basis: Vec<Vec<f32>>,
    b: f32,
    s: f32,
    spread: f32,
}

impl Shape {
    fn new(dim: usize, effective: usize, spread: f32, rng: &mut SmallRng) -> Self {
        let mut basis: Vec<Vec<f32>> = Vec::new();
        while basis.len() < effective + 1 {
            let mut v: Vec<f32> = (0..dim).map(|_| StandardNormal.sample(rng)).collect();
            for u in &basis {
                let d: f32 = v.iter().zip(u).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(x, y)| *x -= d * y);
            }
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            if n > 1e-3 {
                v.iter_mut().for_each(|x| *x /= n);
                basis.push(v);
            }
        }
        // A photo's noise is scaled by r, uniform in 1 +- spread (photos
        // differ in quality): E[r^2] = 1 + spread^2 / 3.
        let s = ((1.0 - A2 - B2) / (1.0 + spread * spread / 3.0)).sqrt();
        Self { dim, basis, b: B2.sqrt(), s, spread }
    }

    fn identity(&self, rng: &mut SmallRng) -> Vec<f32> {
        let scale = 1.0 / ((self.basis.len() - 1) as f32).sqrt();
        (1..self.basis.len())
            .map(|_| {
                let z: f32 = StandardNormal.sample(rng);
                scale * z
            })
            .collect::<Vec<f32>>()
    }

    fn photo(&self, identity: &[f32], rng: &mut SmallRng) -> Vec<f32> {
        let noise = self.identity(rng);
        let r = 1.0 + self.spread * rng.gen_range(-1.0f32..=1.0);
        let mut x: Vec<f32> = self.basis[0].iter().map(|u| A2.sqrt() * u).collect();
        for (j, e) in self.basis[1..].iter().enumerate() {
            let w = self.b * identity[j] + self.s * r * noise[j];
            x.iter_mut().zip(e).for_each(|(x, e)| *x += w * e);
        }
        let n = x.iter().map(|v| v * v).sum::<f32>().sqrt();
        x.iter_mut().for_each(|v| *v /= n);
        debug_assert_eq!(x.len(), self.dim);
        x
    }
}

/// Faces drawn from Gaussians fitted to real embeddings (a two-covariance,
/// PLDA-like model): an identity's centre from the between-person
/// covariance around the real mean, each photo from the within-person
/// covariance around its centre, then normalised.
struct Fitted {
    dim: usize,
    mean: Vec<f32>,
    /// Lower Cholesky factors of the two covariances, row-major.
    between: Vec<f32>,
    within: Vec<f32>,
    /// A photo's within-person draw is scaled by 1 +- spread (photo quality).
    spread: f32,
}

fn cholesky(cov: &[f64], n: usize) -> Vec<f32> {
    let mut l = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                l[i * n + i] = (cov[i * n + i] - s).max(1e-12).sqrt();
            } else {
                l[i * n + j] = (cov[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    l.into_iter().map(|v| v as f32).collect()
}

impl Fitted {
    fn load(path: &std::path::Path, dim: usize, between: f32, within: f32, spread: f32) -> Self {
        let bytes = std::fs::read(path).expect("the real embeddings");
        let row = 4 + 4 * dim;
        assert!(bytes.len() % row == 0, "{} is not rows of a u32 and {dim} f32s", path.display());
        let mut by_person: std::collections::BTreeMap<u32, Vec<Vec<f64>>> = Default::default();
        for r in bytes.chunks_exact(row) {
            let p = u32::from_le_bytes([r[0], r[1], r[2], r[3]]);
            let v = r[4..].chunks_exact(4).map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect();
            by_person.entry(p).or_default().push(v);
        }
        let faces: usize = by_person.values().map(Vec::len).sum();
        let mut mean = vec![0f64; dim];
        for v in by_person.values().flatten() {
            mean.iter_mut().zip(v).for_each(|(m, x)| *m += x / faces as f64);
        }
        let (mut sb, mut sw, mut dof) = (vec![0f64; dim * dim], vec![0f64; dim * dim], 0usize);
        let add = |s: &mut Vec<f64>, d: &[f64], w: f64| {
            for i in 0..dim {
                for j in 0..dim {
                    s[i * dim + j] += w * d[i] * d[j];
                }
            }
        };
        let persons = by_person.len();
        for faces in by_person.values() {
            let n = faces.len() as f64;
            let centre: Vec<f64> = (0..dim).map(|i| faces.iter().map(|v| v[i]).sum::<f64>() / n).collect();
            let d: Vec<f64> = centre.iter().zip(&mean).map(|(c, m)| c - m).collect();
            add(&mut sb, &d, 1.0 / persons as f64);
            if faces.len() > 1 {
                for v in faces {
                    let d: Vec<f64> = v.iter().zip(&centre).map(|(x, c)| x - c).collect();
                    add(&mut sw, &d, 1.0);
                }
                dof += faces.len() - 1;
            }
        }
        sw.iter_mut().for_each(|x| *x /= dof as f64);
        println!("fitted to {faces} real faces of {persons} persons ({dof} within-person degrees of freedom)");
        let scaled = |s: &[f64], k: f32| -> Vec<f64> { s.iter().map(|x| x * f64::from(k * k)).collect() };
        let ridge = |mut s: Vec<f64>| {
            (0..dim).for_each(|i| s[i * dim + i] += 1e-7);
            s
        };
        Self {
            dim,
            mean: mean.iter().map(|&m| m as f32).collect(),
            between: cholesky(&ridge(scaled(&sb, between)), dim),
            within: cholesky(&ridge(scaled(&sw, within)), dim),
            spread,
        }
    }

    fn draw(l: &[f32], dim: usize, rng: &mut SmallRng) -> Vec<f32> {
        let z: Vec<f32> = (0..dim).map(|_| StandardNormal.sample(rng)).collect();
        (0..dim).map(|i| dot(&l[i * dim..i * dim + i + 1], &z[..i + 1])).collect()
    }
}

/// How identities and photos are drawn.
enum Maker {
    Shape(Shape),
    Fitted(Fitted),
}

impl Maker {
    fn dim(&self) -> usize {
        match self {
            Maker::Shape(s) => s.dim,
            Maker::Fitted(f) => f.dim,
        }
    }

    fn identity(&self, rng: &mut SmallRng) -> Vec<f32> {
        match self {
            Maker::Shape(s) => s.identity(rng),
            Maker::Fitted(f) => {
                let d = Fitted::draw(&f.between, f.dim, rng);
                f.mean.iter().zip(d).map(|(m, d)| m + d).collect()
            }
        }
    }

    fn photo(&self, identity: &[f32], rng: &mut SmallRng) -> Vec<f32> {
        match self {
            Maker::Shape(s) => s.photo(identity, rng),
            Maker::Fitted(f) => {
                let r = 1.0 + f.spread * rng.gen_range(-1.0f32..=1.0);
                let d = Fitted::draw(&f.within, f.dim, rng);
                let mut x: Vec<f32> = identity.iter().zip(d).map(|(c, d)| c + r * d).collect();
                let n = x.iter().map(|v| v * v).sum::<f32>().sqrt();
                x.iter_mut().for_each(|v| *v /= n);
                x
            }
        }
    }
}

/// i8 codes of a vector at one gallery-wide scale (`gallery_scale`).
fn quantize(v: &[f32], scale: f32) -> Vec<i8> {
    v.iter().map(|x| (x * scale * 127.0).round().clamp(-127.0, 127.0) as i8).collect()
}

/// The scale that puts the 99.99th-percentile coordinate magnitude at 127.
fn gallery_scale(values: &[f32]) -> f32 {
    let mut coords: Vec<f32> = values.iter().step_by(7).map(|x| x.abs()).collect();
    coords.sort_by(f32::total_cmp);
    1.0 / coords[(coords.len() as f64 * 0.9999) as usize]
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

struct Gallery {
    dim: usize,
    rows: Vec<f32>,
    person: Vec<u32>,
}

impl Gallery {
    fn row(&self, i: usize) -> &[f32] {
        &self.rows[i * self.dim..(i + 1) * self.dim]
    }
    fn len(&self) -> usize {
        self.person.len()
    }
}

struct Probe {
    vector: Vec<f32>,
    /// A real face (not drawn).
    real: bool,
    /// The enrolled person it shows, None for a stranger.
    person: Option<u32>,
}

fn build_gallery(shape: &Maker, faces: usize, probes: usize) -> (Gallery, Vec<Probe>) {
    // Persons with 1, 2 or 3 faces (50 / 30 / 20 %), made in parallel by seed.
    let mut counts = Vec::new();
    let mut rng = SmallRng::seed_from_u64(7);
    let mut total = 0;
    while total < faces {
        let n = match rng.gen_range(0..10) {
            0..=4 => 1,
            5..=7 => 2,
            _ => 3,
        }
        .min(faces - total);
        counts.push(n);
        total += n;
    }
    let made: Vec<(Vec<Vec<f32>>, Vec<f32>)> = counts
        .par_iter()
        .enumerate()
        .map(|(p, &n)| {
            let mut rng = SmallRng::seed_from_u64(1_000_003 * p as u64 + 11);
            let id = shape.identity(&mut rng);
            let photos = (0..n).map(|_| shape.photo(&id, &mut rng)).collect();
            (photos, id)
        })
        .collect();
    let mut g = Gallery { dim: shape.dim(), rows: Vec::with_capacity(faces * shape.dim()), person: Vec::new() };
    for (p, (photos, _)) in made.iter().enumerate() {
        for v in photos {
            g.rows.extend_from_slice(v);
            g.person.push(p as u32);
        }
    }
    let probes: Vec<Probe> = (0..probes)
        .into_par_iter()
        .map(|i| {
            let mut rng = SmallRng::seed_from_u64(0xfeed + i as u64);
            if i % 2 == 0 {
                let p = rng.gen_range(0..made.len());
                Probe { vector: shape.photo(&made[p].1, &mut rng), person: Some(p as u32), real: false }
            } else {
                let id = shape.identity(&mut rng);
                Probe { vector: shape.photo(&id, &mut rng), person: None, real: false }
            }
        })
        .collect();
    (g, probes)
}

/// Reads faces (u32 person, then dim f32s each) by person.
fn read_real(path: &std::path::Path, dim: usize) -> Vec<Vec<Vec<f32>>> {
    let bytes = std::fs::read(path).expect("the real embeddings");
    let mut by: std::collections::BTreeMap<u32, Vec<Vec<f32>>> = Default::default();
    for r in bytes.chunks_exact(4 + 4 * dim) {
        let p = u32::from_le_bytes([r[0], r[1], r[2], r[3]]);
        by.entry(p)
            .or_default()
            .push(r[4..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect());
    }
    by.into_values().collect()
}

/// Adds real persons: the first face of each person with several enrolled,
/// the others probes; persons with one face probe as strangers.
fn mix_real(g: &mut Gallery, probes: &mut Vec<Probe>, real: &[Vec<Vec<f32>>]) -> (usize, usize, usize) {
    let mut next = g.person.iter().max().map_or(0, |p| p + 1);
    let (mut enrolled, mut genuine, mut strangers) = (0, 0, 0);
    for faces in real {
        if faces.len() == 1 {
            probes.push(Probe { vector: faces[0].clone(), person: None, real: true });
            strangers += 1;
            continue;
        }
        g.rows.extend_from_slice(&faces[0]);
        g.person.push(next);
        enrolled += 1;
        for f in &faces[1..] {
            probes.push(Probe { vector: f.clone(), person: Some(next), real: true });
            genuine += 1;
        }
        next += 1;
    }
    (enrolled, genuine, strangers)
}

fn mean_sd(x: &[f32]) -> (f32, f32) {
    let m = x.iter().sum::<f32>() / x.len() as f32;
    (m, (x.iter().map(|v| (v - m) * (v - m)).sum::<f32>() / x.len() as f32).sqrt())
}

/// The synthetic same- and different-person cosines beside LFW's.
fn check_shape(g: &Gallery) {
    let mut rng = SmallRng::seed_from_u64(3);
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for i in 1..g.len().min(200_000) {
        if g.person[i] == g.person[i - 1] {
            genuine.push(dot(g.row(i), g.row(i - 1)));
        }
    }
    while impostor.len() < 200_000 {
        let (i, j) = (rng.gen_range(0..g.len()), rng.gen_range(0..g.len()));
        if g.person[i] != g.person[j] {
            impostor.push(dot(g.row(i), g.row(j)));
        }
    }
    let ((gm, gs), (im, is)) = (mean_sd(&genuine), mean_sd(&impostor));
    println!(
        "same-person cosines:      mean {gm:.3} sd {gs:.3} ({} pairs; LFW DevTrain sface+dlib: 0.834, 0.051)",
        genuine.len()
    );
    println!("different-person cosines: mean {im:.3} sd {is:.3} ({} pairs; LFW: 0.535, 0.046)", impostor.len());
}

/// Exact top face of each probe: (face, similarity).
fn exact(g: &Gallery, probes: &[Probe]) -> Vec<(usize, f32)> {
    probes
        .par_iter()
        .map(|p| {
            (0..g.len())
                .map(|i| (i, dot(&p.vector, g.row(i))))
                .fold((0, f32::MIN), |b, c| if c.1 > b.1 { c } else { b })
        })
        .collect()
}

/// What a candidate index answers for one probe: the top faces with their similarities.
type Answer = Vec<(usize, f32)>;

struct Row {
    name: String,
    build: Duration,
    bytes_per_face: f64,
    save: Option<Duration>,
    load: Option<Duration>,
    answers: Vec<Answer>,
    latencies: Vec<Duration>,
}

fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

fn timed_queries(probes: &[Probe], mut f: impl FnMut(&[f32]) -> Answer) -> (Vec<Answer>, Vec<Duration>) {
    // Warm-up, then one probe at a time on one thread, as a request is served.
    for p in probes.iter().take(50) {
        f(&p.vector);
    }
    let mut answers = Vec::with_capacity(probes.len());
    let mut latencies = Vec::with_capacity(probes.len());
    for p in probes {
        let t = Instant::now();
        answers.push(f(&p.vector));
        latencies.push(t.elapsed());
    }
    (answers, latencies)
}

#[derive(Clone, Copy)]
enum Storage {
    F32,
    F16,
    /// usearch's own cast: each vector scaled to 127 at its norm (a unit vector's coordinates use few levels).
    I8Auto,
    /// visage's cast: one scale for the gallery so that its largest coordinates reach 127 (cosine metric).
    I8Scaled(f32),
}

fn usearch_row(g: &Gallery, probes: &[Probe], storage: Storage, m: usize, ef: usize, args: &Args) -> Row {
    use usearch::{Index, IndexOptions, MetricKind, ScalarKind};
    let (quantization, metric, label) = match storage {
        Storage::F32 => (ScalarKind::F32, MetricKind::IP, "f32".to_string()),
        Storage::F16 => (ScalarKind::F16, MetricKind::IP, "f16".to_string()),
        Storage::I8Auto => (ScalarKind::I8, MetricKind::IP, "i8 (usearch's cast)".to_string()),
        Storage::I8Scaled(s) => (ScalarKind::I8, MetricKind::Cos, format!("i8 (scaled x{s:.1})")),
    };
    let options = IndexOptions {
        dimensions: g.dim,
        metric,
        quantization,
        connectivity: m,
        expansion_add: 128,
        expansion_search: ef,
        multi: false,
    };
    let before = rss();
    let index = Index::new(&options).expect("usearch index");
    index.reserve_capacity_and_threads(g.len(), args.threads).expect("reserve");
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..args.threads {
            let index = &index;
            scope.spawn(move || {
                for i in (t..g.len()).step_by(args.threads) {
                    match storage {
                        Storage::I8Scaled(s) => index.add::<i8>(i as u64, &quantize(g.row(i), s)),
                        _ => index.add::<f32>(i as u64, g.row(i)),
                    }
                    .expect("add");
                }
            });
        }
    });
    let build = start.elapsed();
    let bytes_per_face = (rss().saturating_sub(before)) as f64 / g.len() as f64;
    let path = args.dir.join(format!("ann-choice-{}.usearch", std::process::id()));
    let path_s = path.to_str().expect("utf-8 path");
    let t = Instant::now();
    index.save(path_s).expect("save");
    let save = t.elapsed();
    drop(index);
    let t = Instant::now();
    let index = Index::new(&options).expect("usearch index");
    index.load(path_s).expect("load");
    let load = t.elapsed();
    index.change_expansion_search(ef);
    let _ = std::fs::remove_file(&path);
    let (answers, latencies) = timed_queries(probes, |q| {
        let found = match storage {
            Storage::I8Scaled(s) => index.search::<i8>(&quantize(q, s), K),
            _ => index.search::<f32>(q, K),
        }
        .expect("search");
        found.keys.iter().zip(&found.distances).map(|(&k, &d)| (k as usize, 1.0 - d)).collect()
    });
    Row {
        name: format!("usearch {label}, M {m}, ef {ef}"),
        build,
        bytes_per_face,
        save: Some(save),
        load: Some(load),
        answers,
        latencies,
    }
}

fn hnsw_rs_row(g: &Gallery, probes: &[Probe], m: usize, ef: usize, args: &Args) -> Row {
    use anndists::dist::DistDot;
    use hnsw_rs::hnsw::Hnsw;
    let before = rss();
    let start = Instant::now();
    let index: Hnsw<f32, DistDot> = Hnsw::new(m, g.len(), 16, 200, DistDot {});
    let data: Vec<(&[f32], usize)> = (0..g.len()).map(|i| (g.row(i), i)).collect();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(args.threads).build().expect("pool");
    pool.install(|| index.parallel_insert_slice(&data));
    let build = start.elapsed();
    let bytes_per_face = (rss().saturating_sub(before)) as f64 / g.len() as f64;
    let (answers, latencies) =
        timed_queries(probes, |q| index.search(q, K, ef).iter().map(|n| (n.d_id, 1.0 - n.distance)).collect());
    Row {
        name: format!("hnsw_rs f32, M {m}, ef {ef}"),
        build,
        bytes_per_face,
        save: None,
        load: None,
        answers,
        latencies,
    }
}

/// Exact search over i8 codes (the gallery scaled once, as `i8s`): every
/// face compared, the scan split over the threads; what the exact index
/// would cost at 256 bytes a face.
fn exact_i8_row(g: &Gallery, probes: &[Probe], scale: f32) -> Row {
    let q = |v: &[f32]| quantize(v, scale);
    let before = rss();
    let start = Instant::now();
    let codes: Vec<i8> = g.rows.par_chunks(g.dim).flat_map_iter(|r| q(r)).collect();
    let norms: Vec<f32> = codes
        .par_chunks(g.dim)
        .map(|c| (c.iter().map(|&x| i32::from(x) * i32::from(x)).sum::<i32>() as f32).sqrt())
        .collect();
    let build = start.elapsed();
    let bytes_per_face = (rss().saturating_sub(before)) as f64 / g.len() as f64;
    let dim = g.dim;
    let (answers, latencies) = timed_queries(probes, |v| {
        let qc = q(v);
        let qn = (qc.iter().map(|&x| i32::from(x) * i32::from(x)).sum::<i32>() as f32).sqrt();
        let best = codes
            .par_chunks(dim * 4096)
            .enumerate()
            .map(|(chunk, rows)| {
                let mut best = (0usize, i32::MIN, 1.0f32);
                for (i, r) in rows.chunks_exact(dim).enumerate() {
                    let d: i32 = r.iter().zip(&qc).map(|(&a, &b)| i32::from(a) * i32::from(b)).sum();
                    let row = chunk * 4096 + i;
                    // Compare d / norm without dividing: keep the best ratio.
                    if (d as f32) * best.2 > (best.1 as f32) * norms[row] || best.1 == i32::MIN {
                        best = (row, d, norms[row]);
                    }
                }
                best
            })
            .reduce(
                || (0, i32::MIN, 1.0),
                |a, b| {
                    if a.1 == i32::MIN || (b.1 != i32::MIN && (b.1 as f32) * a.2 > (a.1 as f32) * b.2) { b } else { a }
                },
            );
        vec![(best.0, best.1 as f32 / (best.2 * qn))]
    });
    Row {
        name: "exact over i8 codes (scaled)".into(),
        build,
        bytes_per_face,
        save: None,
        load: None,
        answers,
        latencies,
    }
}

/// Eigenvectors of a symmetric matrix (cyclic Jacobi), by falling eigenvalue.
fn eigen(mut a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mut v = vec![0f64; n * n];
    (0..n).for_each(|i| v[i * n + i] = 1.0);
    for _ in 0..30 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        if off < 1e-18 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-15 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[j * n + j].total_cmp(&a[i * n + i]));
    let values = order.iter().map(|&i| a[i * n + i]).collect();
    let vectors = order.iter().map(|&i| (0..n).map(|k| v[k * n + i]).collect()).collect();
    (values, vectors)
}

/// A graph over the top `k` principal components (of the centred gallery,
/// normalised again), i8 codes, cosine; its candidates rescored with the
/// full f32 vectors (an upper bound of what rescoring with codes gives).
fn pca_row(g: &Gallery, probes: &[Probe], k: usize, m: usize, ef: usize, args: &Args) -> Row {
    use usearch::{Index, IndexOptions, MetricKind, ScalarKind};
    let dim = g.dim;
    let sample: Vec<usize> = (0..g.len()).step_by((g.len() / 20_000).max(1)).collect();
    let mut mean = vec![0f64; dim];
    for &i in &sample {
        mean.iter_mut().zip(g.row(i)).for_each(|(m, &x)| *m += f64::from(x) / sample.len() as f64);
    }
    let mut cov = vec![0f64; dim * dim];
    for &i in &sample {
        let d: Vec<f64> = g.row(i).iter().zip(&mean).map(|(&x, m)| f64::from(x) - m).collect();
        for a in 0..dim {
            for b in 0..dim {
                cov[a * dim + b] += d[a] * d[b] / sample.len() as f64;
            }
        }
    }
    let (values, vectors) = eigen(cov, dim);
    let total: f64 = values.iter().sum();
    let kept: f64 = values[..k].iter().sum();
    println!("PCA: the top {k} of {dim} components hold {:.1} % of the centred variance", 100.0 * kept / total);
    let basis: Vec<Vec<f32>> = vectors[..k].iter().map(|v| v.iter().map(|&x| x as f32).collect()).collect();
    let mean: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
    let project = |x: &[f32]| -> Vec<f32> {
        let c: Vec<f32> = x.iter().zip(&mean).map(|(a, m)| a - m).collect();
        let mut y: Vec<f32> = basis.iter().map(|b| dot(b, &c)).collect();
        let n = y.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        y.iter_mut().for_each(|v| *v /= n);
        y
    };
    let projected: Vec<f32> = (0..g.len()).into_par_iter().flat_map_iter(|i| project(g.row(i))).collect();
    let scale = gallery_scale(&projected);
    let options = IndexOptions {
        dimensions: k,
        metric: MetricKind::Cos,
        quantization: ScalarKind::I8,
        connectivity: m,
        expansion_add: 128,
        expansion_search: ef,
        multi: false,
    };
    let before = rss();
    let index = Index::new(&options).expect("usearch index");
    index.reserve_capacity_and_threads(g.len(), args.threads).expect("reserve");
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..args.threads {
            let (index, projected) = (&index, &projected);
            scope.spawn(move || {
                for i in (t..g.len()).step_by(args.threads) {
                    index.add::<i8>(i as u64, &quantize(&projected[i * k..(i + 1) * k], scale)).expect("add");
                }
            });
        }
    });
    let build = start.elapsed();
    let bytes_per_face = (rss().saturating_sub(before)) as f64 / g.len() as f64;
    let (answers, latencies) = timed_queries(probes, |q| {
        let found = index.search::<i8>(&quantize(&project(q), scale), K).expect("search");
        let mut rescored: Vec<(usize, f32)> =
            found.keys.iter().map(|&f| (f as usize, dot(q, g.row(f as usize)))).collect();
        rescored.sort_by(|a, b| b.1.total_cmp(&a.1));
        rescored
    });
    Row {
        name: format!("usearch i8 over PCA-{k}, M {m}, ef {ef}, f32 rescore"),
        build,
        bytes_per_face,
        save: None,
        load: None,
        answers,
        latencies,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn report(row: &Row, g: &Gallery, probes: &[Probe], truth: &[(usize, f32)], t: f32) {
    let (mut hits, mut genuine, mut agree, mut err) = (0, 0, 0, Vec::new());
    let (mut real_hits, mut real_genuine) = (0, 0);
    for ((p, a), &(best, sim)) in probes.iter().zip(&row.answers).zip(truth) {
        let top = a.first().copied();
        if p.person.is_some() {
            genuine += 1;
            let hit = usize::from(top.is_some_and(|(f, _)| g.person[f] == g.person[best]));
            hits += hit;
            if p.real {
                real_genuine += 1;
                real_hits += hit;
            }
        }
        let known_exact = sim >= t;
        let known = top.is_some_and(|(_, s)| s >= t);
        agree += usize::from(known == known_exact);
        if let Some((f, s)) = top.filter(|(f, _)| *f == best) {
            let _ = f;
            err.push((s - sim).abs());
        }
    }
    let mut lat = row.latencies.clone();
    lat.sort();
    let max_err = err.iter().copied().fold(0.0f32, f32::max);
    println!(
        "| {} | {:.4} | {} | {:.4} | {:.3} | {:.3} | {:.1} | {:.0} | {} | {} | {:.4} |",
        row.name,
        hits as f64 / genuine as f64,
        if real_genuine > 0 {
            format!("{:.4} ({real_hits}/{real_genuine})", real_hits as f64 / real_genuine as f64)
        } else {
            "-".into()
        },
        agree as f64 / probes.len() as f64,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        row.build.as_secs_f64(),
        row.bytes_per_face,
        row.save.map_or("-".into(), |d| format!("{:.2}", d.as_secs_f64())),
        row.load.map_or("-".into(), |d| format!("{:.2}", d.as_secs_f64())),
        max_err,
    );
}

fn cpu() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).unwrap_or("?");
    let flags = info.lines().find(|l| l.starts_with("flags")).unwrap_or("");
    let has: Vec<&str> = ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_fp16"]
        .into_iter()
        .filter(|f| flags.split_whitespace().any(|x| x == *f))
        .collect();
    format!("{} ({})", model.trim(), has.join(", "))
}

fn main() {
    let args = args();
    println!("CPU: {}; {} threads; usearch {}", cpu(), args.threads, usearch::version());
    rayon::ThreadPoolBuilder::new().num_threads(args.threads).build_global().ok();
    let mut rng = SmallRng::seed_from_u64(1);
    let shape = match &args.fit {
        Some(path) => Maker::Fitted(Fitted::load(path, args.dim, args.between, args.within, args.spread)),
        None => Maker::Shape(Shape::new(args.dim, args.effective, args.spread, &mut rng)),
    };
    let t = Instant::now();
    let (g, probes) = build_gallery(&shape, args.faces, args.probes);
    let g: Gallery = g;
    println!(
        "gallery: {} faces of {} persons, {}-d; {} probes (half strangers); made in {:.1} s",
        g.len(),
        g.person.iter().collect::<std::collections::HashSet<_>>().len(),
        g.dim,
        probes.len(),
        t.elapsed().as_secs_f64()
    );
    check_shape(&g);
    let (g, probes) = {
        let (mut g, mut probes) = (g, probes);
        if let Some(path) = &args.real {
            let (e, gp, sp) = mix_real(&mut g, &mut probes, &read_real(path, args.dim));
            println!("real faces mixed in: {e} enrolled, {gp} genuine probes of them, {sp} real strangers");
        }
        (g, probes)
    };
    if args.shape_only {
        return;
    }
    let t = Instant::now();
    let truth = exact(&g, &probes);
    println!("exact search for the probes: {:.1} s", t.elapsed().as_secs_f64());
    let known = truth.iter().filter(|(_, s)| *s >= args.threshold).count();
    let named_right =
        probes.iter().zip(&truth).filter(|(p, (f, s))| *s >= args.threshold && p.person == Some(g.person[*f])).count();
    println!("exact at {}: {known} of {} probes known, {named_right} named right", args.threshold, probes.len());
    let scale = gallery_scale(&g.rows);
    println!();
    println!(
        "| index | recall@1 (genuine) | recall@1 (real genuine) | decision agreement | p50 ms | p99 ms | build s | B/face (RSS) | save s | load s | max sim error |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for v in args.variants.split(',') {
        let parts: Vec<&str> = v.split(':').collect();
        let num = |i: usize, d: usize| parts.get(i).map_or(d, |x| x.parse().expect("M and EF are numbers"));
        let (m, ef) = (num(1, 16), num(2, 64));
        let row = match parts[0] {
            "f32" => usearch_row(&g, &probes, Storage::F32, m, ef, &args),
            "f16" => usearch_row(&g, &probes, Storage::F16, m, ef, &args),
            "i8" => usearch_row(&g, &probes, Storage::I8Auto, m, ef, &args),
            "i8s" => usearch_row(&g, &probes, Storage::I8Scaled(scale), m, ef, &args),
            "exact-i8s" => exact_i8_row(&g, &probes, scale),
            "hnsw_rs" => hnsw_rs_row(&g, &probes, m, ef, &args),
            "pca" => pca_row(&g, &probes, num(3, 128), m, ef, &args),
            other => panic!("unknown variant {other}"),
        };
        report(&row, &g, &probes, &truth, args.threshold);
    }
}
