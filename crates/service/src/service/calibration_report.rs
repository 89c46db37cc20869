//! `GET /v1/calibration` and `visage calibrate`: the error rates expected at
//! the thresholds in force, from the reference and from the gallery's own
//! pairs side by side, and the thresholds that would meet common targets.
use serde::Serialize;

use super::Service;
use super::calibration::{GallerySample, ThresholdRule};
use crate::calibration::{Reference, wilson_upper};
use crate::service::error::{Error, Result};

#[derive(Debug, Clone, Serialize)]
pub struct CalibrationReport {
    /// The embedder whose scores these are.
    pub model: String,
    /// The reference distribution shipped with the embedder (null: none).
    pub reference: Option<ReferenceSummary>,
    pub gallery: GallerySample,
    pub verify: VerifyCalibration,
    pub identify: IdentifyCalibration,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReferenceSummary {
    pub source: String,
    /// The command that regenerates it.
    pub command: String,
    pub photos: usize,
    pub persons: usize,
    pub genuine_pairs: u64,
    pub impostor_pairs: u64,
}

/// Expected rates at a threshold (null: nothing to estimate from).
#[derive(Debug, Clone, Serialize)]
pub struct Rates {
    pub far: Option<f64>,
    pub frr: Option<f64>,
}

/// A rate counted on the gallery's own pairs, with its 95 % upper bound.
#[derive(Debug, Clone, Serialize)]
pub struct Counted {
    pub pairs: u64,
    pub errors: u64,
    pub rate: f64,
    pub upper_95: f64,
}

impl Counted {
    fn new(errors: f64, pairs: u64) -> Option<Self> {
        let errors = errors.round();
        (pairs > 0).then(|| Counted {
            pairs,
            errors: errors as u64,
            rate: errors / pairs as f64,
            upper_95: wilson_upper(errors, pairs as f64),
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct GalleryRates {
    /// Different-person pairs at or above the threshold.
    pub far: Option<Counted>,
    /// Same-person pairs below it.
    pub frr: Option<Counted>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FarTarget {
    pub far: f64,
    pub threshold: f32,
    pub expected_frr: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyCalibration {
    pub threshold: f32,
    pub rule: ThresholdRule,
    pub source: &'static str,
    /// What the estimate in force expects (the reference, raised where the gallery shows more).
    pub expected: Rates,
    /// The reference alone.
    pub reference: Option<Rates>,
    /// The gallery's own pairs alone.
    pub gallery: GalleryRates,
    /// The thresholds that meet common targets.
    pub targets: Vec<FarTarget>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LeaveOneOut {
    /// Enrolled faces searched as strangers (against everyone but their own person).
    pub probes: usize,
    pub false_positives: usize,
    pub fpir: f64,
    pub upper_95: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FpirTarget {
    pub fpir: f64,
    pub threshold: f32,
    pub expected_fnir: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdentifyCalibration {
    pub threshold: f32,
    pub rule: ThresholdRule,
    pub source: &'static str,
    /// Faces a stranger is compared with.
    pub faces: usize,
    /// Expected false-positive identification rate: `1 - (1 - FAR)^faces`.
    pub expected_fpir: Option<f64>,
    /// Expected share of enrolled persons not found (their best face below the threshold).
    pub expected_fnir: Option<f64>,
    /// Enrolled faces as strangers to the rest of the gallery.
    pub gallery_leave_one_out: Option<LeaveOneOut>,
    /// How far the best person must lead the second when both clear the threshold.
    pub ambiguity_margin: f32,
    pub targets: Vec<FpirTarget>,
}

const FAR_TARGETS: [f64; 5] = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6];
const FPIR_TARGETS: [f64; 3] = [1e-1, 1e-2, 1e-3];

/// Comparisons the leave-one-out check may make (probes x faces), so a
/// report on a large gallery stays near a second.
const LEAVE_ONE_OUT_BUDGET: usize = 50_000_000;

impl Service {
    /// Samples the gallery again and reports.
    pub async fn calibration_report(&self) -> Result<CalibrationReport> {
        let cal = self.recalibrate().await?;
        let e = &cal.estimate;
        let gallery = cal.gallery.clone().ok_or_else(|| Error::Internal(anyhow::anyhow!("no gallery sample")))?;
        let faces = gallery.faces;
        let now = self.thresholds_in_force(faces);
        let t = f64::from(now.verify);
        let own = e.gallery.as_ref();
        let reference = self.config.reference.as_deref();
        let verify = VerifyCalibration {
            threshold: now.verify,
            rule: now.verify_rule,
            source: now.verify_source,
            expected: Rates { far: now.verify_expected_far, frr: now.verify_expected_frr },
            reference: e.reference.as_ref().map(|r| Rates { far: Some(r.far(t)), frr: r.frr(t) }),
            gallery: GalleryRates {
                far: own.and_then(|g| Counted::new(g.impostor().at_or_above(t), g.impostor().total())),
                frr: own.and_then(|g| {
                    let n = g.genuine().total();
                    Counted::new(n as f64 - g.genuine().at_or_above(t), n)
                }),
            },
            targets: FAR_TARGETS
                .iter()
                .map(|&far| {
                    let threshold = ThresholdRule::Far(far).resolve(e, faces);
                    FarTarget { far, threshold, expected_frr: e.frr(f64::from(threshold)) }
                })
                .collect(),
        };
        let loo = self.leave_one_out(now.identify).await?;
        let identify = IdentifyCalibration {
            threshold: now.identify,
            rule: now.identify_rule,
            source: now.identify_source,
            faces,
            expected_fpir: now.identify_expected_fpir,
            expected_fnir: now.identify_expected_fnir,
            gallery_leave_one_out: loo,
            ambiguity_margin: now.ambiguity_margin,
            targets: FPIR_TARGETS
                .iter()
                .map(|&fpir| {
                    let threshold = ThresholdRule::Fpir(fpir).resolve(e, faces);
                    FpirTarget { fpir, threshold, expected_fnir: e.frr(f64::from(threshold)) }
                })
                .collect(),
        };
        Ok(CalibrationReport {
            model: self.model.clone(),
            reference: reference.map(summary),
            gallery,
            verify,
            identify,
        })
    }

    /// Enrolled faces (an even spread of them) searched as strangers: the
    /// best person other than their own against `threshold`.
    async fn leave_one_out(&self, threshold: f32) -> Result<Option<LeaveOneOut>> {
        let gallery = self.gallery.clone();
        tokio::task::spawn_blocking(move || {
            let g = gallery.read();
            let faces = g.faces();
            if g.persons() < 2 {
                return None;
            }
            let probes = faces.min(1000).min((LEAVE_ONE_OUT_BUDGET / faces.max(1)).max(100));
            let step = faces as f64 / probes as f64;
            let mut hits = 0;
            for k in 0..probes {
                let Some((_, person, query)) = g.entry((k as f64 * step) as usize) else { continue };
                let best_other = g.search(&query, 2).into_iter().find(|c| c.person_id != person);
                hits += usize::from(best_other.is_some_and(|c| c.similarity >= threshold));
            }
            Some(LeaveOneOut {
                probes,
                false_positives: hits,
                fpir: hits as f64 / probes as f64,
                upper_95: wilson_upper(hits as f64, probes as f64),
            })
        })
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("calibration failed: {e}")))
    }
}

fn summary(r: &Reference) -> ReferenceSummary {
    ReferenceSummary {
        source: r.source.clone(),
        command: r.command.clone(),
        photos: r.photos,
        persons: r.persons,
        genuine_pairs: r.genuine.total(),
        impostor_pairs: r.impostor.total(),
    }
}
