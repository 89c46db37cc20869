//! `visage calibrate` and `visage gallery doctor`: the calibration report
//! and the gallery's health, on the database directly.
use std::process::ExitCode;

use anyhow::Result;

use super::args::{DbArg, PipelineArgs, ThresholdArgs};
use super::{Threads, runtime};
use visage_service::service::{CalibrationReport, GalleryHealth, Service, ServiceConfig};

/// What both gallery reports take: the database, the models, the threshold
/// flags `visage serve` takes, and the output form.
#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// Print JSON (as the API answers) instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub thresholds: ThresholdArgs,
    #[command(flatten)]
    pub db: DbArg,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

/// Opens the service on the database, makes the report, prints it (JSON or
/// `text`) and returns it.
pub(super) fn report<T: serde::Serialize>(
    a: &ReportArgs,
    text: impl Fn(&T) -> String,
    make: impl AsyncFnOnce(&Service) -> visage_service::service::error::Result<T>,
) -> Result<T> {
    super::admin::ensure_exists(&a.db.db)?;
    let choice = a.thresholds.choice()?;
    let keys = a.db.keys.keys()?;
    let p = &a.pipeline;
    runtime(Threads::Many)?.block_on(async {
        let config = ServiceConfig::default();
        let service =
            visage_service::admin::open_service(&p.models_dir, p.config(), &a.db.db, &keys, 1, config, &choice).await?;
        let report = make(&service).await;
        service.store().close().await;
        let report = report?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", text(&report));
        }
        Ok(report)
    })
}

/// `visage calibrate`.
pub fn calibrate(a: &ReportArgs) -> Result<ExitCode> {
    report(a, describe, async |s| s.calibration_report().await)?;
    Ok(ExitCode::SUCCESS)
}

fn rate(x: Option<f64>) -> String {
    match x {
        Some(x) if x >= 0.01 => format!("{:.2} %", 100.0 * x),
        Some(x) => format!("{x:.2e}"),
        None => "unknown".into(),
    }
}

/// The report as a person reads it.
pub fn describe(r: &CalibrationReport) -> String {
    let mut out = format!("embedder {}\n", r.model);
    match &r.reference {
        Some(x) => {
            out += &format!(
                "reference: {} ({} same-person, {} different-person pairs)\n",
                x.source, x.genuine_pairs, x.impostor_pairs
            )
        }
        None => out += "reference: none for this embedder (rates come from the gallery alone)\n",
    }
    let g = &r.gallery;
    out += &format!(
        "gallery: {} faces, {} persons ({} with two or more faces): {} same-person, {} different-person pairs{}\n\n",
        g.faces,
        g.persons,
        g.persons_with_two_or_more_faces,
        g.genuine_pairs,
        g.impostor_pairs,
        if g.impostor_pairs_sampled { " (sampled)" } else { "" }
    );
    let v = &r.verify;
    out += &format!("1:1 (verify, compare): threshold {} ({})\n", v.threshold, v.source);
    out += &format!("  expected: FAR {}, FRR {}\n", rate(v.expected.far), rate(v.expected.frr));
    if let Some(x) = &v.reference {
        out += &format!("  reference alone: FAR {}, FRR {}\n", rate(x.far), rate(x.frr));
    }
    let counted = |c: &Option<visage_service::service::calibration_report::Counted>| match c {
        Some(c) => format!("{} of {} (at most {} at 95 %)", c.errors, c.pairs, rate(Some(c.upper_95))),
        None => "no pairs".into(),
    };
    out += &format!(
        "  the gallery's own pairs: false accepts {}, false rejects {}\n",
        counted(&v.gallery.far),
        counted(&v.gallery.frr)
    );
    out += "  thresholds for targets:";
    for t in &v.targets {
        out += &format!(" FAR {:.0e} -> {} (FRR {});", t.far, t.threshold, rate(t.expected_frr));
    }
    let i = &r.identify;
    out += &format!("\n\n1:N (identify): threshold {} for {} faces ({})\n", i.threshold, i.faces, i.source);
    out += &format!("  expected: FPIR {}, FNIR {}\n", rate(i.expected_fpir), rate(i.expected_fnir));
    if let Some(l) = &i.gallery_leave_one_out {
        out += &format!(
            "  enrolled faces searched as strangers: {} of {} named (at most {} at 95 %)\n",
            l.false_positives,
            l.probes,
            rate(Some(l.upper_95))
        );
    }
    out += &format!("  ambiguous when the best two persons are less than {} apart\n", i.ambiguity_margin);
    out += "  thresholds for targets at this size:";
    for t in &i.targets {
        out += &format!(" FPIR {:.0e} -> {} (FNIR {});", t.fpir, t.threshold, rate(t.expected_fnir));
    }
    out + "\n"
}

/// `visage gallery doctor`: exit code 0 when nothing is found, 4 otherwise.
/// `visage clusters`: every cluster of at least `min_size` faces.
pub fn clusters(a: &ReportArgs, min_size: u32) -> Result<ExitCode> {
    report(a, cluster_lines, async |s| s.list_clusters(min_size as usize, usize::MAX, None).await)?;
    Ok(ExitCode::SUCCESS)
}

/// The clusters as a person reads them.
fn cluster_lines(page: &visage_service::service::ClusterPage) -> String {
    let mut out = format!("{} clusters\n", page.clusters.len());
    for c in &page.clusters {
        let maybe = c
            .nearest_person
            .as_ref()
            .map_or(String::new(), |p| format!(", maybe {} {:?} ({:.3})", p.id, p.name, p.similarity));
        out += &format!("cluster {}: {} faces, cohesion {:.3}{maybe}\n", c.id, c.size, c.cohesion);
        for f in &c.faces {
            out += &format!("  {} {}\n", f.id, f.external_id.as_deref().unwrap_or("-"));
        }
    }
    out
}

pub fn doctor(a: &ReportArgs, all: bool) -> Result<ExitCode> {
    let r = report(a, findings, async |s| s.gallery_health(all).await)?;
    let c = &r.counts;
    let clean = c.disagreeing_faces + c.look_alikes + c.low_quality + c.other_model == 0;
    Ok(if clean { ExitCode::SUCCESS } else { ExitCode::from(4) })
}

/// The findings as a person reads them.
pub fn findings(r: &GalleryHealth) -> String {
    let mut out = format!(
        "{} faces, {} persons; embedder {}\nlook-alikes searched from {} of {} faces{}\n",
        r.faces,
        r.persons,
        r.model,
        r.look_alike_probes,
        r.faces,
        if r.complete { "" } else { " (an even spread; --all searches every face)" }
    );
    let c = &r.counts;
    out += &format!(
        "\n{} faces disagree with their own person (no other face of theirs reaches {}): likely mislabelled\n",
        c.disagreeing_faces, r.disagree_below
    );
    for f in &r.disagreeing_faces {
        out += &format!(
            "  person {} {:?}: face {} (best {:.3} against {} other faces)\n",
            f.person_id,
            f.name,
            f.face_id,
            f.best_own_similarity,
            f.own_faces - 1
        );
    }
    out += &format!(
        "\n{} pairs of persons at or above {} (the 1:N threshold): one person enrolled twice, or look-alikes\n",
        c.look_alikes, r.look_alike_from
    );
    for p in &r.look_alikes {
        out += &format!(
            "  {} {:?} and {} {:?}: {:.3} (faces {} and {})\n",
            p.person_ids[0], p.names[0], p.person_ids[1], p.names[1], p.similarity, p.face_ids[0], p.face_ids[1]
        );
    }
    out += &format!("\n{} enrollments today's gates would refuse\n", c.low_quality);
    for f in &r.low_quality {
        out += &format!(
            "  person {} {:?}: face {} ({}; size {:.0} px, sharpness {:.0}, detector {:.2})\n",
            f.person_id,
            f.name,
            f.face_id,
            f.reasons.join(", "),
            f.face_size,
            f.sharpness,
            f.detection_score
        );
    }
    out += &format!("\n{} faces have no embedding by this embedder (run `visage reembed --to` it)\n", c.other_model);
    for f in &r.other_model {
        out += &format!("  person {} {:?}: face {} ({})\n", f.person_id, f.name, f.face_id, f.model);
    }
    out
}
