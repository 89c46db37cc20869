//! The command line: `visage serve`, the one-photo commands, the
//! measurements and the administration commands. clap lives here and only
//! here: each command turns its arguments into the library's own types.
mod admin;
mod args;
mod data_key;
mod data_key_args;
mod durations;
mod embedder_switch;
mod eval;
mod events_args;
mod gallery;
mod limit_args;
mod photos;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

pub use admin::{KeysCommand, PersonsCommand};
pub use args::{DbArg, PipelineArgs, ServeArgs};
pub use eval::{BenchArgs, EvalCommand, GalleryBenchArgs, IndexBenchArgs, ModelBenchArgs};
use visage_service::domain::FaceChoice;
use visage_service::server::{Application, DEFAULT_MODELS_DIR, shutdown_signal};

#[derive(Parser, Debug)]
#[command(name = "visage", version, about = "Self-hosted face recognition: detect, align, embed, verify, identify")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP service.
    Serve(Box<ServeArgs>),
    /// Print every face in a photo (box, landmarks, score, quality) as JSON.
    Detect {
        image: PathBuf,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// Print the embedding of every face in a photo as JSON.
    Embed {
        image: PathBuf,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// Compare the largest face of two photos: cosine similarity and decision.
    Compare {
        image_a: PathBuf,
        image_b: PathBuf,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// Measure accuracy on labelled pairs of photos.
    Eval {
        #[command(subcommand)]
        what: EvalCommand,
    },
    /// Time each pipeline stage on photos, single-threaded.
    Bench(BenchArgs),
    /// Time the models alone at given input sizes, single-threaded.
    BenchModels(ModelBenchArgs),
    /// Write a model as visage runs it (after the load-time rewrites), for
    /// profiling with other tools (e.g. `tract OUT --profile`).
    RewriteModel {
        /// The manifest id of the model.
        id: String,
        out: PathBuf,
        #[arg(long, env = "VISAGE_MODELS_DIR", default_value = DEFAULT_MODELS_DIR)]
        models_dir: PathBuf,
    },
    /// The 1:N index on a realistic synthetic gallery (real faces optionally
    /// mixed in) against exact search: recall, decisions, latency, build,
    /// reopen, memory per face.
    BenchGallery(IndexBenchArgs),
    /// Start-up at scale: synthetic embeddings inserted through the store,
    /// loaded as at start-up, searched.
    BenchLoad(GalleryBenchArgs),
    /// Unassigned faces at scale: synthetic faces of the gallery's shape kept
    /// through the service's own path; import time, a face's join p50/p99,
    /// `GET /v1/clusters` p50/p99, memory a face, clustering quality.
    BenchClusters(eval::ClusterBenchArgs),
    /// Copy the database consistently while the service runs (`VACUUM INTO`;
    /// a PostgreSQL store is backed up with its own tools). Sealed values
    /// stay sealed in the copy.
    Backup {
        /// The new file to write.
        dest: PathBuf,
        /// Write every embedding and crop of the copy in clear (the data key
        /// is needed): a copy that no longer needs the key, to be kept as
        /// carefully as the key itself.
        #[arg(long)]
        decrypt: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Encryption at rest: make a data key, or reseal everything with another.
    DataKey {
        #[command(subcommand)]
        action: data_key::DataKeyCommand,
    },
    /// Print the OpenAPI 3.1 document (as served at /openapi.json), e.g. to generate a client.
    Openapi,
    /// Enroll a folder of folders: DIR/<person name>/<photos>. Resumable (photos
    /// already enrolled are skipped); unusable photos are reported with reasons.
    EnrollDir {
        dir: PathBuf,
        /// `single`: skip photos with several faces; `largest`: use the largest.
        #[arg(long, value_parser = args::face_choice(&["single", "largest"]), default_value = "single")]
        face: FaceChoice,
        /// Photos analysed at once (default: the number of cores).
        #[arg(long, env = "VISAGE_WORKERS")]
        workers: Option<usize>,
        /// Keep each face's aligned crop (biometric data; README: Keeping crops).
        #[arg(long, env = "VISAGE_KEEP_CROPS")]
        keep_crops: bool,
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// Faces kept from a folder of photos (unassigned, or by person folder).
    Faces {
        #[command(subcommand)]
        action: FacesCommand,
    },
    /// The clusters of unassigned faces, largest first: each with its faces'
    /// external ids and the enrolled person it may be.
    Clusters {
        /// Smallest cluster listed.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
        min_size: u32,
        #[command(flatten)]
        report: gallery::ReportArgs,
    },
    /// Write every person with their faces and embeddings as JSON lines.
    Export {
        /// Output file (default: standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Write the embeddings in clear; otherwise a database with a data
        /// key exports them sealed with it.
        #[arg(long)]
        decrypt: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Read a file written by `visage export`; refuses embeddings of another model.
    Import {
        file: PathBuf,
        /// The data key the file's embeddings are sealed with, when it is
        /// not this database's (they are sealed again with this database's).
        #[arg(long)]
        export_key_file: Option<PathBuf>,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, env = "VISAGE_MODELS_DIR", default_value = DEFAULT_MODELS_DIR)]
        models_dir: PathBuf,
        /// The embedder whose embeddings are accepted (default: the manifest's).
        #[arg(long, env = "VISAGE_EMBEDDER")]
        embedder: Option<String>,
    },
    /// List, show or delete persons.
    Persons {
        #[command(subcommand)]
        action: PersonsCommand,
        #[command(flatten)]
        db: DbArg,
    },
    /// Embed the stored faces with another embedder (--to; default: the
    /// configured one), kept beside their own embeddings: from their kept
    /// crops, else their photos (found by hash under --photos); lists persons
    /// who need new photos, then what identify would answer differently.
    /// Resumable. `--switch` then makes it every face's own model.
    Reembed {
        /// The embedder to move to (as --embedder names it).
        #[arg(long)]
        to: Option<String>,
        /// A folder searched (recursively) for the original photos.
        #[arg(long)]
        photos: Option<PathBuf>,
        /// Afterwards, make the new model every face's own (one transaction;
        /// the old embeddings stay beside until `visage gallery prune`).
        #[arg(long)]
        switch: bool,
        /// With --switch: switch even though some faces have no embedding of
        /// the model (they stay on theirs).
        #[arg(long, requires = "switch")]
        force: bool,
        #[arg(long, env = "VISAGE_WORKERS")]
        workers: Option<usize>,
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// The error rates expected at the thresholds (those `visage serve` would
    /// use with the same flags), from the embedder's reference scores and the
    /// gallery's own pairs, and the thresholds that meet common targets.
    Calibrate(gallery::ReportArgs),
    /// The gallery's health: `visage gallery doctor`.
    Gallery {
        #[command(subcommand)]
        action: GalleryCommand,
    },
    /// Manage API keys in the database (works while the service runs).
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum FacesCommand {
    /// Keep the faces of every photo below DIR, each with its path relative
    /// to DIR as external id: unassigned (`--unassigned`; each joins or
    /// starts a cluster), or for the person the first folder names.
    /// Resumable (photos already imported are skipped).
    Import {
        dir: PathBuf,
        /// Keep the faces without a person (the photo-library flow).
        #[arg(long)]
        unassigned: bool,
        /// Which faces of a photo: `all` (default), `largest`, `central` or `single`.
        #[arg(long, value_parser = args::face_choice(&["all", "largest", "central", "single"]), default_value = "all")]
        face: FaceChoice,
        /// Photos analysed at once (default: the number of cores).
        #[arg(long, env = "VISAGE_WORKERS")]
        workers: Option<usize>,
        /// Keep each face's aligned crop (biometric data; README: Keeping crops).
        #[arg(long, env = "VISAGE_KEEP_CROPS")]
        keep_crops: bool,
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum GalleryCommand {
    /// Faces that disagree with their own person (likely mislabelled), pairs
    /// of persons closer than the 1:N threshold (twins, duplicates),
    /// enrollments today's gates would refuse, faces of another model; each
    /// with its ids. Exit code 4 when anything is found.
    Doctor {
        /// Search every face for look-alikes however large the gallery (the
        /// API searches an even spread beyond 50 million comparisons).
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        report: gallery::ReportArgs,
    },
    /// The models the faces have embeddings of: their own, and kept beside
    /// by `visage reembed --to`.
    Models {
        #[command(flatten)]
        report: gallery::ReportArgs,
    },
    /// What identify would answer differently on the gallery's own faces
    /// under another model (each face the probe, the others the gallery;
    /// each model with its own threshold and margin).
    Changes {
        /// Default: the model most faces own, other than --to.
        #[arg(long)]
        from: Option<String>,
        /// Default: the configured embedder's model.
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        report: gallery::ReportArgs,
    },
    /// Make MODEL (an embedder's name or a model id) every face's own, in one
    /// transaction; the previous embeddings stay beside, so switching back
    /// undoes it until they are pruned. Refused while faces lack MODEL.
    Switch {
        model: String,
        /// Switch even though some faces lack MODEL (they stay on theirs).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        report: gallery::ReportArgs,
    },
    /// Delete the embeddings kept beside the faces' own (of MODEL, or all):
    /// after a switch, once the old model will not be needed again. Refused
    /// when the configured embedder compares faces by them.
    Prune {
        model: Option<String>,
        #[command(flatten)]
        report: gallery::ReportArgs,
    },
}

/// The tokio runtime a command runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Threads {
    /// The service, and commands that run inference beside the store.
    Many,
    /// Commands that only talk to the store.
    One,
}

fn runtime(threads: Threads) -> Result<tokio::runtime::Runtime> {
    let mut builder = match threads {
        Threads::Many => tokio::runtime::Builder::new_multi_thread(),
        Threads::One => tokio::runtime::Builder::new_current_thread(),
    };
    Ok(builder.enable_all().build()?)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let (json, otlp) = match &cli.command {
        Command::Serve(a) => (a.log_json, a.otlp.config()),
        _ => (false, None),
    };
    let _tracing = match visage_service::telemetry::init_tracing(json, otlp.as_ref()) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("visage: error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("visage: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &ServeArgs) -> Result<ExitCode> {
    let config = args.config()?;
    runtime(Threads::Many)?.block_on(async move {
        let app = Application::build(config).await?;
        app.run_until_stopped(shutdown_signal()).await
    })?;
    Ok(ExitCode::SUCCESS)
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(&args),
        Command::Detect { image, pipeline } => photos::detect(&image, &pipeline),
        Command::Embed { image, pipeline } => photos::embed(&image, &pipeline),
        Command::Compare { image_a, image_b, pipeline } => photos::compare(&image_a, &image_b, &pipeline),
        Command::Eval { what } => eval::eval(what),
        Command::Bench(args) => eval::bench(args),
        Command::BenchModels(args) => eval::bench_models(args),
        Command::BenchGallery(args) => eval::bench_gallery(args),
        Command::BenchLoad(args) => eval::bench_load(args),
        Command::BenchClusters(args) => eval::bench_clusters(args),
        Command::Keys { action, db } => admin::keys(action, &db),
        Command::EnrollDir { dir, face, workers, keep_crops, db, pipeline } => {
            admin::enroll_dir(&dir, face, workers, keep_crops, &db, &pipeline)
        }
        Command::Faces {
            action: FacesCommand::Import { dir, unassigned, face, workers, keep_crops, db, pipeline },
        } => admin::faces_import(&dir, unassigned, face, workers, keep_crops, &db, &pipeline),
        Command::Clusters { min_size, report } => gallery::clusters(&report, min_size),
        Command::Export { out, decrypt, db } => admin::export(out.as_deref(), decrypt, &db),
        Command::Import { file, export_key_file, db, models_dir, embedder } => {
            admin::import(&file, &db, export_key_file.as_deref(), &models_dir, embedder.as_deref())
        }
        Command::Persons { action, db } => admin::persons(action, &db),
        Command::Reembed { to, photos, switch, force, workers, db, mut pipeline } => {
            pipeline.embedder = to.or(pipeline.embedder);
            embedder_switch::reembed(photos.as_deref(), switch.then_some(force), workers, &db, &pipeline)
        }
        Command::Calibrate(args) => gallery::calibrate(&args),
        Command::Gallery { action } => match action {
            GalleryCommand::Doctor { all, report } => gallery::doctor(&report, all),
            GalleryCommand::Models { report } => embedder_switch::models(&report),
            GalleryCommand::Changes { from, to, report } => embedder_switch::changes(&report, from, to),
            GalleryCommand::Switch { model, force, report } => embedder_switch::switch(&report, &model, force),
            GalleryCommand::Prune { model, report } => embedder_switch::prune(&report, model),
        },
        Command::Openapi => {
            println!("{}", visage_service::http::openapi().to_pretty_json()?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { dest, decrypt, db } => admin::backup(&dest, decrypt, &db),
        Command::DataKey { action } => data_key::data_key(action),
        Command::RewriteModel { id, out, models_dir } => photos::rewrite_model(&id, &out, &models_dir),
    }
}
