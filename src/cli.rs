//! The command line: `visage detect|embed|compare|eval|bench`.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::domain::Scope;
use crate::gallery::{HnswParams, IndexConfig, IndexKind};
use crate::model::{Backend, BackendConfig};
use crate::server::{Application, Config, shutdown_signal};
use crate::service::ServiceConfig;
use crate::store::Store;
use crate::vision::decode::DecodeLimits;
use crate::vision::detect::DetectorConfig;
use crate::vision::similarity::dot;
use crate::vision::{EmbeddedFace, Pipeline, PipelineConfig, Select};

#[derive(Parser, Debug)]
#[command(name = "visage", version, about = "Self-hosted face recognition: detect, align, embed, verify, identify")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP service.
    Serve(ServeArgs),
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
        what: crate::eval::EvalCommand,
    },
    /// Time each pipeline stage on photos, single-threaded.
    Bench(crate::eval::bench::BenchArgs),
    /// Time the models alone at given input sizes, single-threaded.
    BenchModels(crate::eval::bench::ModelBenchArgs),
    /// Write a model as visage runs it (after the load-time rewrites), for
    /// profiling with other tools (e.g. `tract OUT --profile`).
    RewriteModel {
        /// The manifest id of the model.
        id: String,
        out: PathBuf,
        #[arg(long, env = "VISAGE_MODELS_DIR", default_value = "models")]
        models_dir: PathBuf,
    },
    /// 1:N search at scale: insert synthetic embeddings, load, search.
    BenchGallery(crate::eval::gallery_bench::GalleryBenchArgs),
    /// Copy the database consistently while the service runs (`VACUUM INTO`).
    Backup {
        /// The new file to write.
        dest: PathBuf,
        /// SQLite database file.
        #[arg(long, env = "VISAGE_DB", default_value = "data/visage.db")]
        db: PathBuf,
    },
    /// Print the OpenAPI 3.1 document (as served at /openapi.json), e.g. to generate a client.
    Openapi,
    /// Enroll a folder of folders: DIR/<person name>/<photos>. Resumable (photos
    /// already enrolled are skipped); unusable photos are reported with reasons.
    EnrollDir {
        dir: PathBuf,
        /// `single`: skip photos with several faces; `largest`: use the largest.
        #[arg(long, value_enum, default_value_t = FaceArg::Single)]
        face: FaceArg,
        /// Photos analysed at once (default: the number of cores).
        #[arg(long, env = "VISAGE_WORKERS")]
        workers: Option<usize>,
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// Write every person with their faces and embeddings as JSON lines.
    Export {
        /// Output file (default: standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
        #[command(flatten)]
        db: DbArg,
    },
    /// Read a file written by `visage export`; refuses embeddings of another model.
    Import {
        file: PathBuf,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, env = "VISAGE_MODELS_DIR", default_value = "models")]
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
    /// Embed stored faces again with the configured embedder, from their photos
    /// (found by hash under --photos); lists persons who need new photos.
    Reembed {
        /// A folder searched (recursively) for the original photos.
        #[arg(long)]
        photos: Option<PathBuf>,
        #[arg(long, env = "VISAGE_WORKERS")]
        workers: Option<usize>,
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// Manage API keys in the database (works while the service runs).
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
        /// SQLite database file.
        #[arg(long, env = "VISAGE_DB", default_value = "data/visage.db", global = true)]
        db: PathBuf,
    },
}

/// OpenTelemetry export (builds with `--features otel`).
#[derive(Args, Debug, Clone, Default)]
pub struct OtlpArgs {
    /// Export request spans over OTLP/HTTP to this URL (e.g.
    /// http://collector:4318/v1/traces); requests with a `traceparent` continue that trace.
    #[arg(long, env = "VISAGE_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Send OTLP as JSON instead of protobuf.
    #[arg(long, env = "VISAGE_OTLP_JSON")]
    pub otlp_json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct DbArg {
    /// SQLite database file.
    #[arg(long, env = "VISAGE_DB", default_value = "data/visage.db", global = true)]
    pub db: PathBuf,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceArg {
    Single,
    Largest,
}

#[derive(Subcommand, Debug)]
pub enum PersonsCommand {
    /// Every person as JSON lines, in creation order.
    List,
    /// A person with their faces (never embeddings) as JSON.
    Show { id: String },
    /// Delete a person and all their faces.
    Delete { id: String },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key and print it (the only time it is shown).
    Create {
        #[arg(long, value_enum)]
        scope: Scope,
        /// A label for the key (who or what uses it).
        #[arg(long)]
        name: String,
        /// Print the key alone, for scripts.
        #[arg(long)]
        quiet: bool,
    },
    /// List keys (ids, names, scopes; never secrets) as JSON.
    List,
    /// Revoke a key by id.
    Revoke { id: String },
}

/// `visage serve`: every flag has a `VISAGE_*` environment equivalent.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "VISAGE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// SQLite database file (created with its folder).
    #[arg(long, env = "VISAGE_DB", default_value = "data/visage.db")]
    pub db: PathBuf,
    /// Inference threads (default: the number of cores).
    #[arg(long, env = "VISAGE_WORKERS")]
    pub workers: Option<usize>,
    /// Requests that may wait for an inference thread; more get 429.
    #[arg(long, env = "VISAGE_QUEUE", default_value_t = Config::default().queue)]
    pub queue: usize,
    /// Largest request body, in bytes.
    #[arg(long, env = "VISAGE_BODY_LIMIT", default_value_t = Config::default().body_limit)]
    pub body_limit: usize,
    /// Largest decoded image, in pixels (width x height).
    #[arg(long, env = "VISAGE_MAX_PIXELS", default_value_t = DecodeLimits::default().max_pixels)]
    pub max_pixels: u64,
    /// Largest image width or height, in pixels.
    #[arg(long, env = "VISAGE_MAX_DIMENSION", default_value_t = DecodeLimits::default().max_dimension)]
    pub max_dimension: u32,
    /// Cosine similarity at or above which verify and compare say "match" (default: the model's).
    #[arg(long, env = "VISAGE_VERIFY_THRESHOLD")]
    pub verify_threshold: Option<f32>,
    /// Cosine similarity at or above which identify names a person (stricter
    /// than 1:1; default: the embedder's).
    #[arg(long, env = "VISAGE_IDENTIFY_THRESHOLD")]
    pub identify_threshold: Option<f32>,
    /// Smallest face (box side, px) accepted for enrollment.
    #[arg(long, env = "VISAGE_MIN_FACE_SIZE", default_value_t = ServiceConfig::default().min_face_size)]
    pub min_face_size: f32,
    /// Smallest sharpness accepted for enrollment (Laplacian variance of the aligned face).
    #[arg(long, env = "VISAGE_MIN_SHARPNESS", default_value_t = ServiceConfig::default().min_sharpness)]
    pub min_sharpness: f32,
    /// Most faces analysed per photo.
    #[arg(long, env = "VISAGE_MAX_FACES", default_value_t = ServiceConfig::default().max_faces)]
    pub max_faces: usize,
    #[command(flatten)]
    pub index: IndexArgs,
    /// Seconds to let in-flight requests finish after SIGTERM/ctrl-c.
    #[arg(long, env = "VISAGE_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    pub shutdown_timeout: u64,
    /// Log as JSON lines.
    #[arg(long, env = "VISAGE_LOG_JSON")]
    pub log_json: bool,
    #[command(flatten)]
    pub otlp: OtlpArgs,
    /// Seconds a client may take to send a request's headers (slow-loris guard).
    #[arg(long, env = "VISAGE_HEADER_READ_TIMEOUT", default_value_t = 10)]
    pub header_read_timeout: u64,
    /// Seconds a whole request may take, body upload included (then 408).
    #[arg(long, env = "VISAGE_REQUEST_TIMEOUT", default_value_t = 60)]
    pub request_timeout: u64,
    /// Also serve `/metrics`, without authentication, on this address (e.g.
    /// `0.0.0.0:9090` on an internal network); on the main address it needs a key.
    #[arg(long, env = "VISAGE_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Serve a non-loopback address without API keys (otherwise refused
    /// until a key exists: `visage keys create`).
    #[arg(long, env = "VISAGE_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

impl ServeArgs {
    pub fn config(&self) -> Result<Config> {
        let mut c = Config {
            addr: self.addr.clone(),
            db: self.db.clone(),
            models_dir: self.pipeline.models_dir.clone(),
            workers: self.workers.unwrap_or_else(crate::server::default_workers).max(1),
            queue: self.queue,
            body_limit: self.body_limit,
            shutdown_timeout: std::time::Duration::from_secs(self.shutdown_timeout),
            insecure_no_auth: self.insecure_no_auth,
            metrics_addr: self.metrics_addr.clone(),
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout.max(1)),
            request_timeout: std::time::Duration::from_secs(self.request_timeout.max(1)),
            pipeline: self.pipeline.config(),
            verify_threshold: self.verify_threshold,
            identify_threshold: self.identify_threshold,
            service: ServiceConfig {
                min_face_size: self.min_face_size,
                min_sharpness: self.min_sharpness,
                max_faces: self.max_faces.max(1),
                index: self.index.config(),
                ..ServiceConfig::default()
            },
        };
        c.pipeline.decode = DecodeLimits { max_pixels: self.max_pixels, max_dimension: self.max_dimension };
        c.pipeline.detector.top_k = c.service.max_faces.max(c.pipeline.detector.top_k);
        for (name, t) in [("verify", c.verify_threshold), ("identify", c.identify_threshold)] {
            if let Some(t) = t {
                anyhow::ensure!(
                    t.is_finite() && (-1.0..=1.0).contains(&t),
                    "the {name} threshold must be within [-1, 1]"
                );
            }
        }
        Ok(c)
    }
}

/// The 1:N index (serve and bench-gallery).
#[derive(Args, Debug, Clone)]
pub struct IndexArgs {
    /// 1:N index: exact (default) or hnsw (approximate; slower start-up, see README).
    #[arg(long, env = "VISAGE_INDEX", value_enum, default_value_t = IndexKind::Exact)]
    pub index: IndexKind,
    /// HNSW: links per node (M).
    #[arg(long, env = "VISAGE_HNSW_M", default_value_t = HnswParams::default().connections)]
    pub hnsw_m: usize,
    /// HNSW: candidate list while building.
    #[arg(long, env = "VISAGE_HNSW_EF_CONSTRUCTION", default_value_t = HnswParams::default().ef_construction)]
    pub hnsw_ef_construction: usize,
    /// HNSW: candidate list while searching (recall against speed).
    #[arg(long, env = "VISAGE_HNSW_EF_SEARCH", default_value_t = HnswParams::default().ef_search)]
    pub hnsw_ef_search: usize,
    /// HNSW: galleries smaller than this are searched exactly.
    #[arg(long, env = "VISAGE_HNSW_MIN_FACES", default_value_t = HnswParams::default().min_faces)]
    pub hnsw_min_faces: usize,
}

impl IndexArgs {
    pub fn config(&self) -> IndexConfig {
        IndexConfig {
            kind: self.index,
            hnsw: HnswParams {
                connections: self.hnsw_m.clamp(2, 255),
                ef_construction: self.hnsw_ef_construction.max(1),
                ef_search: self.hnsw_ef_search.max(1),
                min_faces: self.hnsw_min_faces,
            },
        }
    }
}

/// Options shared by every command that runs the models.
#[derive(Args, Debug, Clone)]
pub struct PipelineArgs {
    /// Folder with manifest.toml and the model files.
    #[arg(long, env = "VISAGE_MODELS_DIR", default_value = "models")]
    pub models_dir: PathBuf,
    /// Minimum detection score of every face but a photo's best one.
    #[arg(long, env = "VISAGE_DETECT_SCORE", default_value_t = DetectorConfig::default().score_threshold)]
    pub detect_score: f32,
    /// Minimum detection score of a photo's best face.
    #[arg(long, env = "VISAGE_DETECT_BEST_SCORE", default_value_t = DetectorConfig::default().best_score_threshold)]
    pub detect_best_score: f32,
    /// Photos with a longer side than this are downscaled for detection.
    #[arg(long, env = "VISAGE_DETECT_MAX_SIDE", default_value_t = DetectorConfig::default().max_side)]
    pub detect_max_side: u32,
    /// Embed the mirrored face too and average (test-time augmentation).
    #[arg(long, env = "VISAGE_FLIP")]
    pub flip: bool,
    /// The embedder: `sface`, `dlib`, `sface+dlib`, or another id in the
    /// model manifest (default: the manifest's `embedder`). Embeddings of
    /// different embedders are never compared; `visage reembed` moves a gallery.
    #[arg(long, env = "VISAGE_EMBEDDER")]
    pub embedder: Option<String>,
    /// Inference backend: tract (default, pure Rust) or onnxruntime (needs a
    /// build with `--features onnxruntime` and `make onnxruntime`).
    #[arg(long, env = "VISAGE_BACKEND", value_enum, default_value_t = Backend::Tract)]
    pub backend: Backend,
    /// ONNX Runtime shared library (default: <models-dir>/onnxruntime/libonnxruntime.so).
    #[arg(long, env = "VISAGE_ONNXRUNTIME_LIBRARY")]
    pub onnxruntime_library: Option<PathBuf>,
}

impl PipelineArgs {
    pub fn config(&self) -> PipelineConfig {
        let mut c = PipelineConfig::default();
        c.detector.score_threshold = self.detect_score;
        c.detector.best_score_threshold = self.detect_best_score;
        c.detector.max_side = self.detect_max_side.max(32);
        c.flip = self.flip;
        c.embedder = self.embedder.clone();
        c.backend = BackendConfig { backend: self.backend, onnxruntime_library: self.onnxruntime_library.clone() };
        c
    }

    pub fn load(&self) -> Result<Pipeline> {
        Pipeline::load(&self.models_dir, self.config())
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let (json, otlp) = match &cli.command {
        Command::Serve(a) => (a.log_json, Some(a.otlp.clone())),
        _ => (false, None),
    };
    let _tracing = match init_tracing(json, otlp.as_ref()) {
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

/// tract warns that opset 21 is newer than it is tested with; the parity tests
/// cover these models, so that warning is hidden unless asked for.
pub const DEFAULT_LOG_FILTER: &str = "info,tract_onnx=error";

/// What keeps the log and trace outputs running (the OTLP exporter flushes
/// when it is dropped).
pub struct TracingGuard {
    #[cfg(feature = "otel")]
    _otel: Option<crate::otel::Guard>,
}

/// Logs to standard error (JSON lines with `json`), and with the `otel`
/// feature and an OTLP endpoint, spans exported over OpenTelemetry.
fn init_tracing(json: bool, otlp: Option<&OtlpArgs>) -> Result<TracingGuard> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let fmt = if json { fmt.json().boxed() } else { fmt.boxed() };
    let registry = tracing_subscriber::registry().with(filter).with(fmt);
    #[cfg(feature = "otel")]
    {
        if let Some(endpoint) = otlp.and_then(|o| o.otlp_endpoint.as_deref()) {
            let (layer, guard) = crate::otel::layer(endpoint, otlp.is_some_and(|o| o.otlp_json))?;
            let _ = registry.with(layer).try_init();
            return Ok(TracingGuard { _otel: Some(guard) });
        }
        let _ = registry.try_init();
        Ok(TracingGuard { _otel: None })
    }
    #[cfg(not(feature = "otel"))]
    {
        if otlp.is_some_and(|o| o.otlp_endpoint.is_some()) {
            anyhow::bail!("--otlp-endpoint needs a build with `--features otel`");
        }
        let _ = registry.try_init();
        Ok(TracingGuard {})
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let config = args.config()?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(async move {
                let app = Application::build(config).await?;
                app.run_until_stopped(shutdown_signal()).await
            })?;
        }
        Command::Detect { image, pipeline } => {
            let p = pipeline.load()?;
            let (faces, _) = p.analyze_bytes(&read(&image)?, Select::All, false)?;
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "faces": faces }))?);
        }
        Command::Embed { image, pipeline } => {
            let p = pipeline.load()?;
            let (faces, _) = p.analyze_bytes(&read(&image)?, Select::All, true)?;
            let faces: Vec<EmbeddedFace> = faces.into_iter().map(EmbeddedFace::from).collect();
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "faces": faces }))?);
        }
        Command::Compare { image_a, image_b, pipeline } => {
            let p = pipeline.load()?;
            let mut embs = Vec::new();
            for path in [&image_a, &image_b] {
                let (faces, _) = p.analyze_bytes(&read(path)?, Select::Largest, true)?;
                let e = faces
                    .into_iter()
                    .next()
                    .and_then(|f| f.embedding)
                    .with_context(|| format!("no face found in {}", path.display()))?;
                embs.push(e);
            }
            let similarity = dot(&embs[0].values, &embs[1].values);
            let threshold = p.embedder.threshold.unwrap_or(0.0);
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "similarity": similarity,
                    "threshold": threshold,
                    "match": similarity >= threshold,
                    "model": p.embedder.id().to_string(),
                }))?
            );
        }
        Command::Eval { what } => return crate::eval::run(what),
        Command::Bench(args) => return crate::eval::bench::run(args),
        Command::BenchModels(args) => return crate::eval::bench::run_models(args),
        Command::BenchGallery(args) => return crate::eval::gallery_bench::run(args),
        Command::Keys { action, db } => return keys(action, &db),
        Command::EnrollDir { dir, face, workers, db, pipeline } => {
            return enroll_dir(&dir, face, workers, &db.db, &pipeline);
        }
        Command::Export { out, db } => return export(out.as_deref(), &db.db),
        Command::Import { file, db, models_dir, embedder } => {
            return import(&file, &db.db, &models_dir, embedder.as_deref());
        }
        Command::Persons { action, db } => return persons(action, &db.db),
        Command::Reembed { photos, workers, db, pipeline } => {
            return reembed(photos.as_deref(), workers, &db.db, &pipeline);
        }
        Command::Openapi => {
            println!("{}", crate::http::openapi().to_pretty_json()?);
        }
        Command::Backup { dest, db } => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                anyhow::ensure!(db.is_file(), "no database at {}", db.display());
                let store = Store::open(&db).await.with_context(|| format!("opening {}", db.display()))?;
                store.backup(&dest).await.with_context(|| format!("backing up to {}", dest.display()))?;
                store.close().await;
                let copy = Store::open(&dest).await?;
                let check = copy.integrity_check().await?;
                copy.close().await;
                anyhow::ensure!(check == "ok", "the copy fails its integrity check: {check}");
                eprintln!("backed up {} to {} (integrity ok)", db.display(), dest.display());
                anyhow::Ok(())
            })?;
        }
        Command::RewriteModel { id, out, models_dir } => {
            let manifest = crate::model::Manifest::load(&models_dir)?;
            let entry = manifest.models.iter().find(|m| m.id == id).with_context(|| format!("no model {id:?}"))?;
            let proto = crate::model::rewritten_proto(&models_dir, entry)?;
            std::fs::write(&out, prost::Message::encode_to_vec(&proto))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Says that nothing has this id, and fails.
fn not_found(what: &str, id: &str) -> ExitCode {
    eprintln!("visage: error: no {what} with id {id:?}");
    ExitCode::FAILURE
}

fn current_thread() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

fn enroll_dir(dir: &Path, face: FaceArg, workers: Option<usize>, db: &Path, p: &PipelineArgs) -> Result<ExitCode> {
    use crate::service::FaceChoice;
    anyhow::ensure!(dir.is_dir(), "{} is not a folder", dir.display());
    let workers = workers.unwrap_or_else(crate::server::default_workers).max(1);
    let choice = if face == FaceArg::Largest { FaceChoice::Largest } else { FaceChoice::Single };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let service =
            crate::admin::open_service(&p.models_dir, p.config(), db, workers, ServiceConfig::default()).await?;
        let started = std::time::Instant::now();
        let s = crate::admin::enroll_dir::run(&service, dir, choice, workers).await?;
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "{} photos in {:.1} s ({:.1}/s): {} enrolled, {} already enrolled, {} skipped; {} persons created, {} existing",
            s.photos,
            secs,
            s.photos as f64 / secs.max(1e-9),
            s.enrolled,
            s.already_enrolled,
            s.skipped.len(),
            s.persons_created,
            s.persons_existing
        );
        for (reason, n) in &s.skipped_by_reason {
            eprintln!("  skipped, {reason}: {n}");
        }
        for skipped in s.skipped.iter().take(20) {
            eprintln!("  {}: {}", skipped.path.display(), skipped.message);
        }
        if s.skipped.len() > 20 {
            eprintln!("  ... and {} more (all in the JSON summary on standard output)", s.skipped.len() - 20);
        }
        println!("{}", serde_json::to_string_pretty(&s)?);
        service.store().close().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn export(out: Option<&Path>, db: &Path) -> Result<ExitCode> {
    anyhow::ensure!(db.is_file(), "no database at {}", db.display());
    current_thread()?.block_on(async {
        let store = crate::admin::open_store(db).await?;
        let (persons, faces) = match out {
            Some(path) => {
                let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
                crate::admin::transfer::export(&store, &mut std::io::BufWriter::new(file)).await?
            }
            None => crate::admin::transfer::export(&store, &mut std::io::stdout().lock()).await?,
        };
        eprintln!("exported {persons} persons, {faces} faces");
        Ok(ExitCode::SUCCESS)
    })
}

fn import(file: &Path, db: &Path, models_dir: &Path, embedder: Option<&str>) -> Result<ExitCode> {
    let manifest = crate::model::Manifest::load(models_dir)?;
    let plan = match embedder {
        Some(name) => manifest.embedder(name)?,
        None => manifest.default_embedder()?,
    };
    let model = crate::model::embedder_id(&plan).to_string();
    let input =
        std::io::BufReader::new(std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?);
    current_thread()?.block_on(async {
        let store = crate::admin::open_store(db).await?;
        let s = crate::admin::transfer::import(&store, input, &model, None).await?;
        println!("{}", serde_json::to_string_pretty(&s)?);
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn persons(action: PersonsCommand, db: &Path) -> Result<ExitCode> {
    anyhow::ensure!(db.is_file(), "no database at {}", db.display());
    current_thread()?.block_on(async {
        let store = crate::admin::open_store(db).await?;
        let code = match action {
            PersonsCommand::List => {
                let n = crate::admin::persons::list(&store, &mut std::io::stdout().lock()).await?;
                eprintln!("{n} persons");
                ExitCode::SUCCESS
            }
            PersonsCommand::Show { id } => match crate::admin::persons::show(&store, &id).await? {
                Some(v) => {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                    ExitCode::SUCCESS
                }
                None => not_found("person", &id),
            },
            PersonsCommand::Delete { id } => {
                if crate::admin::persons::delete(&store, &id).await? {
                    eprintln!("deleted {id}");
                    ExitCode::SUCCESS
                } else {
                    not_found("person", &id)
                }
            }
        };
        store.close().await;
        Ok(code)
    })
}

fn reembed(photos: Option<&Path>, workers: Option<usize>, db: &Path, p: &PipelineArgs) -> Result<ExitCode> {
    anyhow::ensure!(db.is_file(), "no database at {}", db.display());
    let workers = workers.unwrap_or_else(crate::server::default_workers).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let service =
            crate::admin::open_service(&p.models_dir, p.config(), db, workers, ServiceConfig::default()).await?;
        let s = crate::admin::reembed::run(&service, photos).await?;
        if s.faces_to_reembed == 0 {
            eprintln!("every face is already embedded by {}", s.model);
        } else {
            eprintln!("{} of {} faces re-embedded with {}", s.reembedded, s.faces_to_reembed, s.model);
        }
        if !s.needs_new_photos.is_empty() {
            eprintln!(
                "{} persons need new photos{}:",
                s.needs_new_photos.len(),
                if photos.is_none() { " (or pass --photos DIR with the photos they were enrolled from)" } else { "" }
            );
            for n in &s.needs_new_photos {
                eprintln!("  {} {:?}: {} faces", n.person_id, n.name, n.faces);
            }
        }
        println!("{}", serde_json::to_string_pretty(&s)?);
        service.store().close().await;
        Ok(if s.needs_new_photos.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(3) })
    })
}

fn keys(action: KeysCommand, db: &Path) -> Result<ExitCode> {
    use secrecy::ExposeSecret;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let store = Store::open(db).await.with_context(|| format!("opening {}", db.display()))?;
        let code = match action {
            KeysCommand::Create { scope, name, quiet } => {
                let name = crate::domain::valid_name(&name).map_err(|e| anyhow::anyhow!("invalid `name`: {e}"))?;
                let created = store.create_key(name, scope, "cli").await?;
                if quiet {
                    println!("{}", created.secret.expose_secret());
                } else {
                    println!("{}", serde_json::to_string_pretty(&created.key)?);
                    println!("key (shown once, store it now): {}", created.secret.expose_secret());
                }
                ExitCode::SUCCESS
            }
            KeysCommand::List => {
                println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "keys": store.list_keys().await? }))?);
                ExitCode::SUCCESS
            }
            KeysCommand::Revoke { id } => {
                if store.revoke_key(&id, "cli").await? {
                    eprintln!("revoked {id}");
                    ExitCode::SUCCESS
                } else {
                    not_found("valid key", &id)
                }
            }
        };
        store.close().await;
        anyhow::Ok(code)
    })
}
