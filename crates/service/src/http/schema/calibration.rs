//! The OpenAPI schemas of `GET /v1/calibration`, from mirror structs of the
//! same serde form (the service layer knows nothing of OpenAPI).
#![allow(dead_code)]
use utoipa::ToSchema;

use crate::service::GallerySample;
use crate::service::calibration_report::{
    CalibrationReport, Counted, FarTarget, FpirTarget, GalleryRates, IdentifyCalibration, LeaveOneOut, Rates,
    ReferenceSummary, VerifyCalibration,
};

/// The error rates expected at the thresholds in force, from the embedder's
/// reference scores and the gallery's own pairs, and the thresholds that meet common targets.
#[derive(ToSchema)]
struct CalibrationReportDoc {
    /// The embedder whose scores these are.
    model: String,
    /// The reference distribution shipped with the embedder (null: none).
    reference: Option<ReferenceSummary>,
    gallery: GallerySample,
    verify: VerifyCalibration,
    identify: IdentifyCalibration,
}
documented_as!(CalibrationReport, CalibrationReportDoc, "CalibrationReport");

#[derive(ToSchema)]
struct ReferenceSummaryDoc {
    /// Where the scores were measured.
    source: String,
    /// The command that regenerates them.
    command: String,
    photos: usize,
    persons: usize,
    genuine_pairs: u64,
    impostor_pairs: u64,
}
documented_as!(ReferenceSummary, ReferenceSummaryDoc, "ReferenceSummary");

/// The gallery's own pairs when last sampled.
#[derive(ToSchema)]
struct GallerySampleDoc {
    faces: usize,
    persons: usize,
    /// Persons with two or more faces (they give the same-person pairs).
    persons_with_two_or_more_faces: usize,
    /// Same-person pairs (at most 10 faces a person).
    genuine_pairs: u64,
    /// Different-person pairs (at most 1,000,000, drawn at random beyond that).
    impostor_pairs: u64,
    impostor_pairs_sampled: bool,
}
documented_as!(GallerySample, GallerySampleDoc, "GallerySample");

/// Expected rates at a threshold (null: nothing to estimate from).
#[derive(ToSchema)]
struct RatesDoc {
    /// False-accept rate: the share of different-person pairs at or above the threshold.
    far: Option<f64>,
    /// False-reject rate: the share of same-person pairs below it.
    frr: Option<f64>,
}
documented_as!(Rates, RatesDoc, "Rates");

/// A rate counted on the gallery's own pairs, with the upper end of its 95 % (Wilson) interval.
#[derive(ToSchema)]
struct CountedDoc {
    pairs: u64,
    errors: u64,
    rate: f64,
    upper_95: f64,
}
documented_as!(Counted, CountedDoc, "CountedRate");

#[derive(ToSchema)]
struct GalleryRatesDoc {
    /// Different-person pairs at or above the threshold (null: none).
    far: Option<Counted>,
    /// Same-person pairs below it (null: no person has two faces).
    frr: Option<Counted>,
}
documented_as!(GalleryRates, GalleryRatesDoc, "GalleryRates");

#[derive(ToSchema)]
struct FarTargetDoc {
    far: f64,
    threshold: f32,
    expected_frr: Option<f64>,
}
documented_as!(FarTarget, FarTargetDoc, "FarTarget");

#[derive(ToSchema)]
struct FpirTargetDoc {
    fpir: f64,
    threshold: f32,
    expected_fnir: Option<f64>,
}
documented_as!(FpirTarget, FpirTargetDoc, "FpirTarget");

#[derive(ToSchema)]
struct VerifyCalibrationDoc {
    threshold: f32,
    /// `{"embedder_default": t}`, `{"fixed": t}` or `{"far": target}`.
    #[schema(value_type = Object)]
    rule: serde_json::Value,
    source: String,
    /// What the estimate in force expects: the reference's rates, raised to the
    /// gallery's where it has five or more different-person pairs above the threshold.
    expected: Rates,
    /// The reference alone.
    reference: Option<Rates>,
    /// The gallery's own pairs alone.
    gallery: GalleryRates,
    /// The thresholds that meet common FAR targets.
    targets: Vec<FarTarget>,
}
documented_as!(VerifyCalibration, VerifyCalibrationDoc, "VerifyCalibration");

/// Enrolled faces searched as strangers (against everyone but their own person).
#[derive(ToSchema)]
struct LeaveOneOutDoc {
    probes: usize,
    false_positives: usize,
    fpir: f64,
    upper_95: f64,
}
documented_as!(LeaveOneOut, LeaveOneOutDoc, "LeaveOneOut");

#[derive(ToSchema)]
struct IdentifyCalibrationDoc {
    threshold: f32,
    /// `{"embedder_default": t}`, `{"fixed": t}` or `{"fpir": target}`.
    #[schema(value_type = Object)]
    rule: serde_json::Value,
    source: String,
    /// Faces a stranger is compared with.
    faces: usize,
    /// Expected false-positive identification rate, `1 - (1 - FAR)^faces`.
    expected_fpir: Option<f64>,
    /// Expected share of enrolled persons not found (their best face below the threshold).
    expected_fnir: Option<f64>,
    gallery_leave_one_out: Option<LeaveOneOut>,
    /// How far the best person must lead the second when both clear the threshold.
    ambiguity_margin: f32,
    /// The thresholds that meet common FPIR targets at this gallery size.
    targets: Vec<FpirTarget>,
}
documented_as!(IdentifyCalibration, IdentifyCalibrationDoc, "IdentifyCalibration");
