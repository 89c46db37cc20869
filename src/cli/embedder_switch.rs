//! `visage reembed` and `visage gallery models | changes | switch | prune`:
//! moving a gallery to another embedder.
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::admin::ensure_exists;
use super::args::PipelineArgs;
use super::gallery::{ReportArgs, report};
use super::{Threads, runtime};
use visage_service::admin::ACTOR;
use visage_service::service::embedder_switch::ModelAnswers;
use visage_service::service::{GalleryModels, ModelChanges};
use visage_service::service::{ServiceConfig, ThresholdChoice};
use visage_service::store::Switched;

pub fn reembed(
    photos: Option<&Path>,
    switch: Option<bool>,
    workers: Option<usize>,
    db: &super::DbArg,
    p: &PipelineArgs,
) -> Result<ExitCode> {
    ensure_exists(&db.db)?;
    let keys = db.keys.keys()?;
    let workers = workers.unwrap_or_else(visage_service::server::default_workers).max(1);
    let runtime = runtime(Threads::Many)?;
    runtime.block_on(async {
        let service = visage_service::admin::open_service(
            &p.models_dir,
            p.config(),
            &db.db,
            &keys,
            workers,
            ServiceConfig::default(),
            &ThresholdChoice::default(),
        )
        .await?;
        let s = visage_service::admin::reembed::run(&service, photos, switch).await;
        service.store().close().await;
        let s = s?;
        if s.faces_to_reembed == 0 {
            eprintln!("every face has an embedding by {}", s.model);
        } else {
            eprintln!("{} of {} faces embedded with {} (beside their own)", s.reembedded, s.faces_to_reembed, s.model);
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
        if let Some(c) = &s.changes {
            eprint!("{}", describe_changes(c));
        }
        if let Some(w) = &s.switched {
            eprintln!("{}", describe_switch(w, &s.model));
        }
        println!("{}", serde_json::to_string_pretty(&s)?);
        Ok(if s.needs_new_photos.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(3) })
    })
}

pub fn models(a: &ReportArgs) -> Result<ExitCode> {
    report(a, describe_models, async |s| s.gallery_models().await)?;
    Ok(ExitCode::SUCCESS)
}

pub fn changes(a: &ReportArgs, from: Option<String>, to: Option<String>) -> Result<ExitCode> {
    report(a, describe_changes, async |s| s.model_changes(from.as_deref(), to.as_deref()).await)?;
    Ok(ExitCode::SUCCESS)
}

pub fn switch(a: &ReportArgs, model: &str, force: bool) -> Result<ExitCode> {
    let text = |w: &Switched| describe_switch(w, model) + "\n";
    report(a, text, async |s| s.switch_model(model, force, ACTOR).await)?;
    Ok(ExitCode::SUCCESS)
}

pub fn prune(a: &ReportArgs, model: Option<String>) -> Result<ExitCode> {
    let text = |n: &u64| format!("{n} embeddings kept beside the faces' own deleted\n");
    report(a, text, async |s| s.prune_embeddings(model.as_deref(), ACTOR).await)?;
    Ok(ExitCode::SUCCESS)
}

fn describe_models(m: &GalleryModels) -> String {
    let mut out = format!("{} faces; this embedder compares by {}\n", m.faces, m.serving);
    if m.faces_without_serving_model > 0 {
        out += &format!(
            "{} faces have no embedding by it: `visage reembed --to` it (with --photos unless crops were kept)\n",
            m.faces_without_serving_model
        );
    }
    for c in &m.models {
        let name = c.embedder.as_deref().map_or(String::new(), |n| format!(" ({n})"));
        out += &format!("  {}{name}: own {}, beside {}\n", c.model, c.own, c.beside);
    }
    out
}

fn side(a: &ModelAnswers) -> String {
    format!(
        "{} (1:N threshold {:.4}, margin {:.3}): of {} faces whose person has others, {} named right, {} named \
         as someone else, {} unknown, {} ambiguous; of {} alone, {} named as someone, {} ambiguous",
        a.embedder.as_deref().unwrap_or(&a.model),
        a.identify_threshold,
        a.ambiguity_margin,
        a.with_other_faces,
        a.right,
        a.wrong,
        a.unknown,
        a.ambiguous,
        a.alone,
        a.alone_named,
        a.alone_ambiguous
    )
}

/// The change report as a person reads it.
pub fn describe_changes(c: &ModelChanges) -> String {
    let mut out = format!(
        "identify on the gallery's own faces ({} faces with both models{}; {} probes{}):\n  before: {}\n  after:  {}\n",
        c.faces,
        if c.faces_left_out > 0 { format!(", {} left out", c.faces_left_out) } else { String::new() },
        c.probes,
        if c.complete { "" } else { ", an even spread" },
        side(&c.from),
        side(&c.to)
    );
    out += &format!("{} answers unchanged, {} changed\n", c.unchanged, c.changed);
    for (kind, n) in &c.by_kind {
        out += &format!("  {kind}: {n}\n");
    }
    out
}

pub fn describe_switch(w: &Switched, model: &str) -> String {
    if !w.done {
        return format!("not switched: {} faces have no embedding by {model} (--force switches the others)", w.lacking);
    }
    let mut out = format!("{} faces switched to {model} (their previous embeddings kept beside)", w.switched);
    if w.lacking > 0 {
        out += &format!("; {} faces have no embedding by it and stay on their model", w.lacking);
    }
    out
}
