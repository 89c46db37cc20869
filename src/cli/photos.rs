//! The one-photo commands (`visage detect`, `embed`, `compare`) and
//! `rewrite-model`: the pipeline run in process, its answer printed as JSON.
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::args::PipelineArgs;
use visage_service::calibration::EmbedderPolicy;
use visage_service::domain::FaceChoice;
use visage_service::domain::similarity::dot;
use visage_service::vision::EmbeddedFace;

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// `visage detect`: every face, without embeddings.
pub fn detect(image: &Path, pipeline: &PipelineArgs) -> Result<ExitCode> {
    let p = pipeline.load()?;
    let (faces, _) = p.analyze_bytes(&read(image)?, FaceChoice::All, false)?;
    println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "faces": faces }))?);
    Ok(ExitCode::SUCCESS)
}

/// `visage embed`: every face with its embedding.
pub fn embed(image: &Path, pipeline: &PipelineArgs) -> Result<ExitCode> {
    let p = pipeline.load()?;
    let (faces, _) = p.analyze_bytes(&read(image)?, FaceChoice::All, true)?;
    let faces: Vec<EmbeddedFace> = faces.into_iter().map(EmbeddedFace::from).collect();
    println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "faces": faces }))?);
    Ok(ExitCode::SUCCESS)
}

/// `visage compare`: the largest face of each photo, similarity and decision.
pub fn compare(image_a: &Path, image_b: &Path, pipeline: &PipelineArgs) -> Result<ExitCode> {
    let p = pipeline.load()?;
    let mut embs = Vec::new();
    for path in [image_a, image_b] {
        let (faces, _) = p.analyze_bytes(&read(path)?, FaceChoice::Largest, true)?;
        let e = faces
            .into_iter()
            .next()
            .and_then(|f| f.embedding)
            .with_context(|| format!("no face found in {}", path.display()))?;
        embs.push(e);
    }
    let similarity = dot(&embs[0].values, &embs[1].values);
    let policy = EmbedderPolicy::of_model(&p.manifest, p.embedder.id(), &pipeline.models_dir)?;
    let threshold = policy.verify;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "similarity": similarity,
            "threshold": threshold,
            "match": similarity >= threshold,
            "estimated_far": policy.reference.map(|r| r.scores().far(f64::from(similarity))),
            "model": p.embedder.id().to_string(),
        }))?
    );
    Ok(ExitCode::SUCCESS)
}

/// `visage rewrite-model`: a model as visage runs it, after the load-time rewrites.
pub fn rewrite_model(id: &str, out: &Path, models_dir: &Path) -> Result<ExitCode> {
    let manifest = visage_model::Manifest::load(models_dir)?;
    let entry = manifest.models.iter().find(|m| m.id == id).with_context(|| format!("no model {id:?}"))?;
    let proto = visage_model::rewritten_proto(models_dir, entry)?;
    std::fs::write(out, prost::Message::encode_to_vec(&proto))?;
    Ok(ExitCode::SUCCESS)
}
