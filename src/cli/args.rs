//! The command line's shared argument groups (serve, the pipeline, the 1:N
//! index, the database, OpenTelemetry), each with its `VISAGE_*` variable and
//! the conversion into the library's own configuration. The clap-facing enums
//! here mirror the library's, so clap stays at this edge.
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use visage_model::{Backend, BackendConfig};
use visage_service::domain::Scope;
use visage_service::domain::{FaceChoice, Threshold};
use visage_service::gallery::saved::default_dir as default_index_dir;
use visage_service::gallery::{AnnParams, IndexConfig, IndexKind};
use visage_service::server::{Config, DEFAULT_ADDR, DEFAULT_DB, DEFAULT_MODELS_DIR};
use visage_service::service::{ServiceConfig, ThresholdChoice};

use super::data_key_args::DataKeyArgs;
use super::durations::{Ttl, ttl};
use visage_service::store::Location;
use visage_service::tls::TlsFiles;
use visage_service::vision::decode::DecodeLimits;
use visage_service::vision::detect::DetectorConfig;
use visage_service::vision::{Pipeline, PipelineConfig};

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

impl OtlpArgs {
    /// Where spans go, when an endpoint is given.
    pub fn config(&self) -> Option<visage_service::telemetry::Otlp> {
        let endpoint = self.otlp_endpoint.clone()?;
        Some(visage_service::telemetry::Otlp { endpoint, json: self.otlp_json })
    }
}

#[derive(Args, Debug, Clone)]
pub struct DbArg {
    /// The database: a SQLite file (a path, or sqlite://PATH) or a PostgreSQL URL (postgres://...).
    #[arg(long, env = "VISAGE_DB", default_value = DEFAULT_DB, global = true)]
    pub db: PathBuf,
    #[command(flatten)]
    pub keys: DataKeyArgs,
}

/// `visage serve`: every flag has a `VISAGE_*` environment equivalent.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "VISAGE_ADDR", default_value = DEFAULT_ADDR)]
    pub addr: String,
    /// The database: a SQLite file, created with its folder (a path, or sqlite://PATH), or a
    /// PostgreSQL URL (postgres://...).
    #[arg(long, env = "VISAGE_DB", default_value = DEFAULT_DB)]
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
    #[command(flatten)]
    pub thresholds: ThresholdArgs,
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
    /// Folder the approximate index is saved in between runs (ann, auto), so
    /// a restart reopens it instead of building it (default: beside a SQLite
    /// file, DB.index; with PostgreSQL none: give each replica a local folder).
    #[arg(long, env = "VISAGE_INDEX_DIR")]
    pub index_dir: Option<PathBuf>,
    /// Keep each enrolled face's aligned crop (a 256x256 PNG; biometric data,
    /// deleted with the face), so `visage reembed --to` needs no photos.
    #[arg(long, env = "VISAGE_KEEP_CROPS")]
    pub keep_crops: bool,
    /// Let `POST /v1/identify` with `remember=unknown` keep the faces it
    /// cannot name, as unassigned faces (biometric data of people who never
    /// enrolled: check the law where the service runs; off by default).
    #[arg(long, env = "VISAGE_REMEMBER_UNKNOWN")]
    pub remember_unknown: bool,
    /// Unassigned faces older than this are deleted by the service (audited):
    /// a number with s, m, h or d (`30d`, `12h`); `0` keeps them until deleted.
    #[arg(long, env = "VISAGE_UNASSIGNED_TTL", default_value = "30d", value_parser = ttl)]
    pub unassigned_ttl: Ttl,
    /// Average cosine similarity at or above which an unassigned face joins a
    /// cluster and two clusters merge (tuned for the fused embedder on LFW).
    #[arg(long, env = "VISAGE_CLUSTER_THRESHOLD", default_value_t = ServiceConfig::default().cluster_threshold, value_parser = threshold)]
    pub cluster_threshold: f32,
    /// Seconds to let in-flight requests finish after SIGTERM/ctrl-c.
    #[arg(long, env = "VISAGE_SHUTDOWN_TIMEOUT", default_value_t = Config::default().shutdown_timeout.as_secs())]
    pub shutdown_timeout: u64,
    /// Log as JSON lines.
    #[arg(long, env = "VISAGE_LOG_JSON")]
    pub log_json: bool,
    #[command(flatten)]
    pub otlp: OtlpArgs,
    #[command(flatten)]
    pub events: super::events_args::EventArgs,
    #[command(flatten)]
    pub data_keys: DataKeyArgs,
    #[command(flatten)]
    pub limits: super::limit_args::LimitArgs,
    /// Seconds a client may take to send a request's headers (slow-loris guard).
    #[arg(long, env = "VISAGE_HEADER_READ_TIMEOUT", default_value_t = Config::default().header_read_timeout.as_secs())]
    pub header_read_timeout: u64,
    /// Seconds a whole request may take, body upload included (then 408).
    #[arg(long, env = "VISAGE_REQUEST_TIMEOUT", default_value_t = Config::default().request_timeout.as_secs())]
    pub request_timeout: u64,
    /// Also serve `/metrics`, without authentication, on this address (e.g.
    /// `0.0.0.0:9090` on an internal network); on the main address it needs a key.
    #[arg(long, env = "VISAGE_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Serve HTTPS with this certificate chain (PEM; read again on SIGHUP,
    /// so a renewed certificate needs no restart).
    #[arg(long, env = "VISAGE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "VISAGE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
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
            data_keys: self.data_keys.keys()?,
            limits: self.limits.config()?,
            models_dir: self.pipeline.models_dir.clone(),
            workers: self.workers.unwrap_or_else(visage_service::server::default_workers).max(1),
            queue: self.queue,
            body_limit: self.body_limit,
            shutdown_timeout: std::time::Duration::from_secs(self.shutdown_timeout),
            insecure_no_auth: self.insecure_no_auth,
            metrics_addr: self.metrics_addr.clone(),
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert: cert.clone(), key: key.clone() }),
                _ => None,
            },
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout.max(1)),
            request_timeout: std::time::Duration::from_secs(self.request_timeout.max(1)),
            pipeline: self.pipeline.config(),
            thresholds: self.thresholds.choice()?,
            service: ServiceConfig {
                min_face_size: self.min_face_size,
                min_sharpness: self.min_sharpness,
                max_faces: self.max_faces.max(1),
                index: self.index.config(),
                index_dir: self.index_dir.clone().or_else(|| match Location::parse(&self.db) {
                    Ok(Location::Sqlite(file)) => Some(default_index_dir(&file)),
                    _ => None,
                }),
                keep_crops: self.keep_crops,
                remember_unknown: self.remember_unknown,
                unassigned_ttl: self.unassigned_ttl.0,
                cluster_threshold: self.cluster_threshold,
                event_queue: self.events.event_queue.max(1),
                webhooks: self.events.delivery(),
                ..ServiceConfig::default()
            },
        };
        c.pipeline.decode = DecodeLimits { max_pixels: self.max_pixels, max_dimension: self.max_dimension };
        c.pipeline.detector.top_k = c.service.max_faces.max(c.pipeline.detector.top_k);
        Ok(c)
    }
}

/// How the 1:1 and 1:N thresholds are set (serve and calibrate).
#[derive(Args, Debug, Clone, Default)]
pub struct ThresholdArgs {
    /// Cosine similarity at or above which verify and compare say "match"
    /// (default: the embedder's; README: Thresholds).
    #[arg(long, env = "VISAGE_VERIFY_THRESHOLD", conflicts_with = "verify_far")]
    pub verify_threshold: Option<f32>,
    /// Instead of a 1:1 threshold, the false-accept rate to meet (e.g. 1e-3):
    /// the lowest threshold expected to accept at most this share of other
    /// persons' faces, from the embedder's reference scores and the gallery's own.
    #[arg(long, env = "VISAGE_VERIFY_FAR")]
    pub verify_far: Option<f64>,
    /// Cosine similarity at or above which identify names a person (stricter
    /// than 1:1; default: the embedder's).
    #[arg(long, env = "VISAGE_IDENTIFY_THRESHOLD", conflicts_with = "identify_fpir")]
    pub identify_threshold: Option<f32>,
    /// Instead of a 1:N threshold, the false-positive identification rate to
    /// meet (e.g. 1e-2): the share of strangers named as someone, for the
    /// gallery's current size (the threshold rises as the gallery grows).
    #[arg(long, env = "VISAGE_IDENTIFY_FPIR")]
    pub identify_fpir: Option<f64>,
    /// How far the best of two persons above the 1:N threshold must lead the
    /// second to be named, else "ambiguous" (default: the embedder's
    /// calibrated margin; 0 turns ambiguity off).
    #[arg(long, env = "VISAGE_IDENTIFY_MARGIN")]
    pub identify_margin: Option<f32>,
}

impl ThresholdArgs {
    pub fn choice(&self) -> Result<ThresholdChoice> {
        let checked =
            |name: &str, t: Option<f32>| t.map(Threshold::new).transpose().map_err(|e| anyhow::anyhow!("{name} {e}"));
        for (name, r) in [("--verify-far", self.verify_far), ("--identify-fpir", self.identify_fpir)] {
            if let Some(r) = r {
                anyhow::ensure!(r > 0.0 && r < 1.0, "{name} must be a rate between 0 and 1 (e.g. 1e-3)");
            }
        }
        if let Some(m) = self.identify_margin {
            anyhow::ensure!(m.is_finite() && (0.0..=1.0).contains(&m), "--identify-margin must be within [0, 1]");
        }
        Ok(ThresholdChoice {
            verify: checked("--verify-threshold", self.verify_threshold)?,
            identify: checked("--identify-threshold", self.identify_threshold)?,
            verify_far: self.verify_far,
            identify_fpir: self.identify_fpir,
            identify_margin: self.identify_margin,
        })
    }
}

/// The 1:N index (serve and bench-gallery).
#[derive(Args, Debug, Clone)]
pub struct IndexArgs {
    /// 1:N index: exact (f32, default), exact-i8 (i8 codes: a quarter of the
    /// memory), ann (usearch's HNSW graph over i8 codes, saved in
    /// --index-dir), or auto (exact up to --index-auto-exact-max faces, ann
    /// above). README: "Large galleries".
    #[arg(long, env = "VISAGE_INDEX", value_enum, default_value_t = IndexKindArg::Exact)]
    pub index: IndexKindArg,
    /// auto: the largest gallery searched exactly (measured: exact search
    /// stays under 5 ms up to about this size on 2 cores).
    #[arg(long, env = "VISAGE_INDEX_AUTO_EXACT_MAX", default_value_t = AUTO_EXACT_MAX)]
    pub index_auto_exact_max: usize,
    /// ann: links per face in the graph (HNSW's M; changing it rebuilds the saved graph).
    #[arg(long, env = "VISAGE_ANN_CONNECTIVITY", default_value_t = AnnParams::default().connectivity)]
    pub ann_connectivity: usize,
    /// ann: candidates considered while adding a face (efConstruction).
    #[arg(long, env = "VISAGE_ANN_EXPANSION_ADD", default_value_t = AnnParams::default().expansion_add)]
    pub ann_expansion_add: usize,
    /// ann: candidates considered while searching (ef: recall against speed).
    #[arg(long, env = "VISAGE_ANN_EXPANSION_SEARCH", default_value_t = AnnParams::default().expansion_search)]
    pub ann_expansion_search: usize,
}

/// `--index-auto-exact-max` by default (README: "Large galleries").
pub const AUTO_EXACT_MAX: usize = 100_000;

impl IndexArgs {
    pub fn config(&self) -> IndexConfig {
        IndexConfig {
            kind: self.index.into(),
            ann: AnnParams {
                connectivity: self.ann_connectivity.clamp(2, 255),
                expansion_add: self.ann_expansion_add.max(1),
                expansion_search: self.ann_expansion_search.max(1),
                ..AnnParams::default()
            },
            auto_exact_max: self.index_auto_exact_max,
        }
    }
}

/// Options shared by every command that runs the models.
#[derive(Args, Debug, Clone)]
pub struct PipelineArgs {
    /// Folder with manifest.toml and the model files.
    #[arg(long, env = "VISAGE_MODELS_DIR", default_value = DEFAULT_MODELS_DIR)]
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
    #[arg(long, env = "VISAGE_BACKEND", value_enum, default_value_t = BackendArg::Tract)]
    pub backend: BackendArg,
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
        c.backend =
            BackendConfig { backend: self.backend.into(), onnxruntime_library: self.onnxruntime_library.clone() };
        c
    }

    pub fn load(&self) -> Result<Pipeline> {
        Pipeline::load(&self.models_dir, self.config())
    }

    /// The same, for a measurement that loads the models itself.
    pub fn models(&self) -> visage_eval::Models {
        visage_eval::Models { dir: self.models_dir.clone(), config: self.config() }
    }
}

/// `--backend`: [`Backend`] on the command line.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendArg {
    /// tract, compiled in (pure Rust).
    Tract,
    /// ONNX Runtime's shared library, loaded at start-up (build with
    /// `--features onnxruntime`; `make onnxruntime` fetches the library).
    Onnxruntime,
}

impl From<BackendArg> for Backend {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Tract => Backend::Tract,
            BackendArg::Onnxruntime => Backend::Onnxruntime,
        }
    }
}

/// `--index`: [`IndexKind`] on the command line.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKindArg {
    /// Exact search over f32 embeddings (default).
    Exact,
    /// Exact search over i8 codes (a quarter of the memory).
    ExactI8,
    /// Approximate: usearch's HNSW graph over i8 codes, saved in --index-dir.
    Ann,
    /// Exact up to --index-auto-exact-max faces at loading, ann above.
    Auto,
}

impl From<IndexKindArg> for IndexKind {
    fn from(k: IndexKindArg) -> Self {
        match k {
            IndexKindArg::Exact => IndexKind::Exact,
            IndexKindArg::ExactI8 => IndexKind::ExactI8,
            IndexKindArg::Ann => IndexKind::Ann,
            IndexKindArg::Auto => IndexKind::Auto,
        }
    }
}

/// `--scope`: a key's [`Scope`] on the command line.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeArg {
    /// verify, identify, compare, detect, embed, info.
    Match,
    /// enroll (new persons and new faces), and everything `match` may do.
    Enroll,
    /// manage keys and persons (list, rename, delete), and everything else.
    Admin,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Self {
        match s {
            ScopeArg::Match => Scope::Match,
            ScopeArg::Enroll => Scope::Enroll,
            ScopeArg::Admin => Scope::Admin,
        }
    }
}

/// `--face`: one of the face choices a command takes, read as the domain's
/// [`FaceChoice`] (clap lists `allowed` in the help and refuses the rest).
pub fn face_choice(allowed: &'static [&'static str]) -> impl clap::builder::TypedValueParser<Value = FaceChoice> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(allowed).try_map(|s| s.parse::<FaceChoice>())
}

/// A similarity threshold from 0 to 1.
fn threshold(s: &str) -> Result<f32, String> {
    let t: f32 = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    Threshold::new(t).map(Threshold::get).map_err(|e| e.to_string())
}
