//! The measurement commands' arguments (`visage eval`, `bench`,
//! `bench-models`, `bench-gallery`), turned into `eval`'s own options.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::args::{IndexArgs, PipelineArgs};
use super::{Threads, runtime};
use visage_eval::bench::BenchOptions;
use visage_eval::gallery_bench::GalleryBenchOptions;
use visage_eval::{DetectionsOptions, OneShotOptions, PairsOptions};
use visage_service::domain::FaceChoice;
use visage_service::server::DEFAULT_MODELS_DIR;

#[derive(Subcommand, Debug)]
pub enum EvalCommand {
    /// LFW "View 2" protocol on a pairs file (LFW format or CSV `img_a,img_b,same`).
    Pairs {
        /// The pairs file.
        #[arg(long)]
        pairs: PathBuf,
        /// Folder the image paths are relative to.
        #[arg(long)]
        root: PathBuf,
        /// Folds for a CSV file (an LFW file names its own).
        #[arg(long, default_value_t = 10)]
        folds: usize,
        /// Threads embedding images (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Also write every pair's similarity to this CSV (img_a,img_b,same,similarity).
        #[arg(long)]
        scores: Option<PathBuf>,
        /// Which face of a photo with several is compared: the one nearest the
        /// centre (LFW's convention for its subject) or the largest (the API's).
        #[arg(long, value_parser = super::args::face_choice(&["central", "largest"]), default_value = "central")]
        face: FaceChoice,
        /// Embed each face from the crop `--keep-crops` would keep of it (what
        /// `visage reembed` embeds), not from the photo.
        #[arg(long)]
        via_kept_crop: bool,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// One-shot open-set identification on an LFW-layout folder: persons with
    /// two or more photos enrolled from the first (through the enrollment
    /// gates) and searched with the second; persons with one photo as strangers.
    OneShot {
        /// Folder of `<Name>/<Name>_NNNN.jpg` photos.
        #[arg(long)]
        root: PathBuf,
        /// Take only the persons this pairs file names (LFW format), e.g. View 1's DevTrain.
        #[arg(long)]
        pairs: Option<PathBuf>,
        /// Most persons enrolled.
        #[arg(long, default_value_t = 1000)]
        persons: usize,
        /// Most strangers.
        #[arg(long, default_value_t = 1000)]
        strangers: usize,
        /// The identification threshold (default: the embedder's).
        #[arg(long)]
        threshold: Option<f32>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// The reference score distribution of the embedder: every same-person
    /// and different-person pair of the photos a pairs file names (LFW View
    /// 1's DevTrain), written to `models/reference/<embedder>.json`.
    Reference {
        /// The pairs file whose photos are used (LFW format).
        #[arg(long)]
        pairs: PathBuf,
        /// Folder the image paths are relative to.
        #[arg(long)]
        root: PathBuf,
        /// Write here instead of `<models-dir>/reference/<embedder>.json`.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// How well the reference predicts error rates on other photos (LFW
    /// View 1's DevTest): the thresholds it gives for FAR targets, with the
    /// expected and observed FAR and FRR over every pair of those photos.
    Calibration {
        /// The pairs file whose photos are used (LFW format).
        #[arg(long)]
        pairs: PathBuf,
        /// Folder the image paths are relative to.
        #[arg(long)]
        root: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// What the "ambiguous" identify verdict buys: one-shot galleries (first
    /// photo enrolled, others searched, persons with one photo as strangers,
    /// some persons enrolled twice), right and wrong names per margin.
    Ambiguity {
        /// Folder of `<Name>/<Name>_NNNN.jpg` photos.
        #[arg(long)]
        root: PathBuf,
        /// Take only the persons this pairs file names (LFW format), e.g. View 1's DevTrain.
        #[arg(long)]
        pairs: Option<PathBuf>,
        /// Photos searched per enrolled person.
        #[arg(long, default_value_t = 5)]
        probes: usize,
        /// Persons (with three or more photos) enrolled twice, from two photos under two ids.
        #[arg(long, default_value_t = 50)]
        duplicates: usize,
        /// The identification threshold (default: the embedder's).
        #[arg(long)]
        threshold: Option<f32>,
        /// Store the chosen margin (the smallest that makes 90 % of the probes
        /// of persons enrolled twice ambiguous) in the embedder's reference file.
        #[arg(long)]
        write: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// Every face found in a set of photos down to a low score floor, as JSON
    /// lines (`bench/detection_tradeoff.py` tabulates missed and extra faces
    /// per pair of score bars from one run).
    Detections {
        /// Take the photos a pairs file names (LFW or CSV)...
        #[arg(long, conflicts_with = "dir")]
        pairs: Option<PathBuf>,
        /// ...or every image below this folder.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Folder the pairs file's paths are relative to (and that printed paths are relative to).
        #[arg(long)]
        root: Option<PathBuf>,
        /// The lowest score kept.
        #[arg(long, default_value_t = 0.3)]
        floor: f32,
        /// Write the lines here instead of to standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// Fit the synthetic gallery's shape (`visage bench-gallery`) to the
    /// embeddings of a database of enrolled photos (one person per folder,
    /// `visage enroll-dir`: LFW View 1 DevTrain for the shipped one).
    Shape {
        /// The database of enrolled photos.
        #[arg(long)]
        db: PathBuf,
        /// The model whose embeddings are fitted (default: the one most faces have).
        #[arg(long)]
        model: Option<String>,
        /// Where to write it (e.g. models/reference/sface+dlib.shape).
        #[arg(long)]
        out: PathBuf,
    },
    /// Open-set 1:N calibration: FPIR and DIR per threshold from a file of
    /// `cluster_id,image` rows (one cluster per person).
    Identify {
        #[arg(long)]
        clusters: PathBuf,
        #[arg(long)]
        root: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Photos to time (the largest face of each is aligned and embedded).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    #[command(flatten)]
    pub common: BenchCommon,
}

/// Options every benchmark takes.
#[derive(Args, Debug)]
pub struct BenchCommon {
    /// Timed runs (after two warm-up runs).
    #[arg(long, default_value_t = 30)]
    pub iterations: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

/// `visage bench-models`: the models alone (no decode, resize or NMS).
#[derive(Args, Debug)]
pub struct ModelBenchArgs {
    /// Detector input sizes, WxH (multiples of 32).
    #[arg(long, value_delimiter = ',', default_value = "256x256,320x320,512x640,640x640")]
    pub detector_sizes: Vec<String>,
    #[command(flatten)]
    pub common: BenchCommon,
}

#[derive(Args, Debug)]
pub struct IndexBenchArgs {
    /// Gallery sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "100000")]
    pub sizes: Vec<usize>,
    /// Drawn probes per size (half new photos of enrolled persons, half
    /// strangers), besides the real faces' probes.
    #[arg(long, default_value_t = 2000)]
    pub probes: usize,
    /// The gallery's shape (`visage eval shape`; default:
    /// <models-dir>/reference/<embedder>.shape).
    #[arg(long)]
    pub shape: Option<PathBuf>,
    /// The embedder whose shape is used by default.
    #[arg(long, default_value = "sface+dlib")]
    pub embedder: String,
    /// A database of enrolled real photos (`visage enroll-dir`, one folder per
    /// person) mixed in: each person's first face enrolled, the others
    /// genuine probes, persons with one face strangers.
    #[arg(long)]
    pub real: Option<PathBuf>,
    /// The 1:N threshold decisions are compared at (sface+dlib's default).
    #[arg(long, default_value_t = 0.735)]
    pub threshold: f32,
    /// Folder for the saved graph (default: the system temp folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print a JSON array, one object per size.
    #[arg(long)]
    pub json: bool,
    #[arg(long, env = "VISAGE_MODELS_DIR", default_value = DEFAULT_MODELS_DIR)]
    pub models_dir: PathBuf,
    #[command(flatten)]
    pub index: IndexArgs,
}

#[derive(Args, Debug)]
pub struct ClusterBenchArgs {
    /// Unassigned faces kept, per run.
    #[arg(long, value_delimiter = ',', default_value = "5000,100000")]
    pub sizes: Vec<usize>,
    /// The last faces of each run, kept one at a time and timed.
    #[arg(long, default_value_t = 1000)]
    pub arrivals: usize,
    /// Faces a transaction before them.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// The gallery's shape (default: <models-dir>/reference/sface+dlib.shape).
    #[arg(long)]
    pub shape: Option<PathBuf>,
    /// Folder for the temporary databases (default: the system temp folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// One JSON object per size.
    #[arg(long)]
    pub json: bool,
    #[arg(long, env = "VISAGE_MODELS_DIR", default_value = DEFAULT_MODELS_DIR)]
    pub models_dir: PathBuf,
}

/// `visage bench-clusters`.
pub fn bench_clusters(a: ClusterBenchArgs) -> Result<ExitCode> {
    let shape = a.shape.clone().unwrap_or_else(|| a.models_dir.join("reference").join("sface+dlib.shape"));
    let o = visage_eval::cluster_bench::ClusterBenchOptions {
        sizes: a.sizes,
        arrivals: a.arrivals,
        batch: a.batch,
        shape,
        models_dir: a.models_dir,
        dir: a.dir,
        json: a.json,
    };
    runtime(Threads::Many)?.block_on(visage_eval::cluster_bench::run(o))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct GalleryBenchArgs {
    /// Gallery sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    pub sizes: Vec<usize>,
    /// Probes searched per size.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// Folder for the temporary databases (default: the system temp folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Measure in this empty database instead (a `postgres://` URL, say), for one size.
    #[arg(long)]
    pub db: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
    /// The index to measure; for exact-i8 and ann, recall@1 against exact f32 search is reported.
    #[command(flatten)]
    pub index: IndexArgs,
    /// Measure each size in clear and then sealed with a fresh data key
    /// (encryption at rest), with the ratios.
    #[arg(long)]
    pub sealed: bool,
}

/// `visage eval ...`.
pub fn eval(cmd: EvalCommand) -> Result<ExitCode> {
    match cmd {
        EvalCommand::Pairs { pairs, root, folds, threads, json, scores, face, via_kept_crop, pipeline } => {
            let o = PairsOptions { pairs, root, folds, threads, json, scores, face, via_kept_crop };
            visage_eval::pairs_command(o, &pipeline.models())
        }
        EvalCommand::OneShot { root, pairs, persons, strangers, threshold, json, pipeline } => {
            let o = OneShotOptions { root, pairs, persons, strangers, threshold, json };
            visage_eval::one_shot_command(o, &pipeline.models())
        }
        EvalCommand::Reference { pairs, root, out, pipeline } => {
            visage_eval::calibrate::reference_command(&pipeline.models(), &pairs, &root, out)
        }
        EvalCommand::Calibration { pairs, root, json, pipeline } => {
            visage_eval::calibrate::calibration_command(&pipeline.models(), &pairs, &root, json)
        }
        EvalCommand::Ambiguity { root, pairs, probes, duplicates, threshold, write, json, pipeline } => {
            let o =
                visage_eval::ambiguity::AmbiguityOptions { root, pairs, probes, duplicates, threshold, write, json };
            visage_eval::ambiguity::command(o, &pipeline.models())
        }
        EvalCommand::Detections { pairs, dir, root, floor, out, pipeline } => {
            visage_eval::detections_command(DetectionsOptions { pairs, dir, root, floor, out }, &pipeline.models())
        }
        EvalCommand::Identify { clusters, root, json, pipeline } => {
            visage_eval::identify_command(&clusters, &root, json, &pipeline.models())
        }
        EvalCommand::Shape { db, model, out } => shape(&db, model.as_deref(), &out),
    }
}

impl BenchCommon {
    fn options(&self) -> BenchOptions {
        BenchOptions { iterations: self.iterations, json: self.json }
    }
}

/// `visage bench`.
pub fn bench(args: BenchArgs) -> Result<ExitCode> {
    let p = args.common.pipeline.load()?;
    visage_eval::bench::run(&p, &args.images, args.common.options())
}

/// `visage bench-models`.
pub fn bench_models(args: ModelBenchArgs) -> Result<ExitCode> {
    let p = args.common.pipeline.load()?;
    visage_eval::bench::run_models(&p, &args.detector_sizes, args.common.options())
}

/// `visage bench-gallery`.
pub fn bench_gallery(args: IndexBenchArgs) -> Result<ExitCode> {
    let shape =
        args.shape.unwrap_or_else(|| args.models_dir.join("reference").join(format!("{}.shape", args.embedder)));
    let real = match &args.real {
        Some(db) => runtime(Threads::Many)?.block_on(visage_eval::embeddings_by_person(db, None))?.1,
        None => Vec::new(),
    };
    let reference_file = visage_service::calibration::Reference::path(&args.models_dir, &args.embedder);
    let reference = match std::fs::read_to_string(&reference_file) {
        Ok(text) => Some(serde_json::from_str::<visage_service::calibration::Reference>(&text)?.scores()),
        Err(_) => None,
    };
    let o = visage_eval::index_bench::IndexBenchOptions {
        reference,
        sizes: args.sizes,
        probes: args.probes,
        shape,
        real,
        threshold: args.threshold,
        index: args.index.config(),
        dir: args.dir,
        json: args.json,
    };
    visage_eval::index_bench::run(&o)?;
    Ok(ExitCode::SUCCESS)
}

/// `visage eval shape`.
pub fn shape(db: &std::path::Path, model: Option<&str>, out: &std::path::Path) -> Result<ExitCode> {
    let (model, by_person) = runtime(Threads::Many)?.block_on(visage_eval::embeddings_by_person(db, model))?;
    let shape = visage_eval::synthetic::Shape::fit(&by_person)?;
    shape.save(out)?;
    println!("{}: {model}, {} faces of {} persons, {}-d", out.display(), shape.faces, shape.persons, shape.dim);
    Ok(ExitCode::SUCCESS)
}

/// `visage bench-load`.
pub fn bench_load(args: GalleryBenchArgs) -> Result<ExitCode> {
    let GalleryBenchArgs { sizes, queries, dim, top_k, dir, db, json, index, sealed } = args;
    let o = GalleryBenchOptions { sizes, queries, dim, top_k, dir, db, json, index: index.config(), sealed };
    runtime(Threads::Many)?.block_on(visage_eval::gallery_bench::run(o))
}
