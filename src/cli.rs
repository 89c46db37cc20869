//! The command line: `visage detect|embed|compare|eval|bench`.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::vision::detect::DetectorConfig;
use crate::vision::similarity::dot;
use crate::vision::{Pipeline, PipelineConfig, Select};

#[derive(Parser, Debug)]
#[command(name = "visage", version, about = "Self-hosted face recognition: detect, align, embed, verify, identify")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
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
}

/// Options shared by every command that runs the models.
#[derive(Args, Debug, Clone)]
pub struct PipelineArgs {
    /// Folder with manifest.toml and the model files.
    #[arg(long, env = "VISAGE_MODELS_DIR", default_value = "models")]
    pub models_dir: PathBuf,
    /// Minimum detection score.
    #[arg(long, env = "VISAGE_DETECT_SCORE", default_value_t = DetectorConfig::default().score_threshold)]
    pub detect_score: f32,
    /// Photos with a longer side than this are downscaled for detection.
    #[arg(long, env = "VISAGE_DETECT_MAX_SIDE", default_value_t = DetectorConfig::default().max_side)]
    pub detect_max_side: u32,
    /// Embed the mirrored face too and average (test-time augmentation).
    #[arg(long, env = "VISAGE_FLIP")]
    pub flip: bool,
}

impl PipelineArgs {
    pub fn config(&self) -> PipelineConfig {
        let mut c = PipelineConfig::default();
        c.detector.score_threshold = self.detect_score;
        c.detector.max_side = self.detect_max_side.max(32);
        c.flip = self.flip;
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
    init_tracing();
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

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Detect { image, pipeline } => {
            let p = pipeline.load()?;
            let (faces, _) = p.analyze_bytes(&read(&image)?, Select::All, false)?;
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "faces": faces }))?);
        }
        Command::Embed { image, pipeline } => {
            let p = pipeline.load()?;
            let (faces, _) = p.analyze_bytes(&read(&image)?, Select::All, true)?;
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
    }
    Ok(ExitCode::SUCCESS)
}
