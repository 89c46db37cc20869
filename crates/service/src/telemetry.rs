//! Prometheus metrics through the `metrics` facade: the domain code records
//! (stage timings, faces per photo, queue rejections) without knowing who
//! collects; this module installs the Prometheus recorder once per process
//! and renders the exposition, setting the gauges that are read at scrape
//! time (queue depth, gallery size). Logs and traces are set up here too:
//! once per process, by whichever front end starts (`init_tracing`).
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by `method`, `route` (the route template) and `status`.
pub const HTTP_REQUESTS: &str = "visage_http_requests_total";
/// Request latency in seconds, same labels.
pub const HTTP_DURATION: &str = "visage_http_request_duration_seconds";
/// Time per pipeline stage, by `stage`: decode, detect, align, embed, search.
pub const STAGE_DURATION: &str = "visage_stage_duration_seconds";
/// Faces detected per analysed photo.
pub const FACES_PER_PHOTO: &str = "visage_faces_per_photo";
/// Jobs refused because the inference queue was full (answered 429).
pub const QUEUE_REJECTED: &str = "visage_inference_rejected_total";
/// Jobs waiting for an inference thread.
pub const QUEUE_DEPTH: &str = "visage_inference_queue_depth";
/// Jobs running on inference threads.
pub const QUEUE_RUNNING: &str = "visage_inference_running";
/// Queue capacity (waiting jobs beyond it get 429).
pub const QUEUE_CAPACITY: &str = "visage_inference_queue_capacity";
/// Faces in the in-memory gallery (searchable with the current model).
pub const GALLERY_FACES: &str = "visage_gallery_faces";
/// Persons with at least one searchable face.
pub const GALLERY_PERSONS: &str = "visage_gallery_persons";
/// Stored faces embedded by another model (never compared).
pub const GALLERY_OTHER_MODEL: &str = "visage_gallery_faces_other_model";
/// 1 while the database answers (a replica's last catch-up succeeded), else 0.
pub const DATABASE_UP: &str = "visage_database_up";
/// Changes made by other replicas or admin commands, read from the change log and applied.
pub const CHANGES_FOLLOWED: &str = "visage_changes_followed_total";

const LATENCY_BUCKETS: [f64; 15] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
const STAGE_BUCKETS: [f64; 13] = [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
const FACE_BUCKETS: [f64; 9] = [0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0];

/// The process's Prometheus recorder, installed on first use. `None` when
/// another recorder was installed first (metrics then go there).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), &LATENCY_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(STAGE_DURATION.into()), &STAGE_BUCKETS))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(FACES_PER_PHOTO.into()), &FACE_BUCKETS));
            match builder.and_then(|b| b.install_recorder()) {
                Ok(handle) => {
                    describe();
                    // Shown as 0 from the start, not only after the first rejection.
                    metrics::counter!(QUEUE_REJECTED).absolute(0);
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Prometheus metrics are off: another metrics recorder is installed");
                    None
                }
            }
        })
        .as_ref()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by method, route template and status");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "HTTP request latency, by method, route template and status");
    describe_histogram!(
        STAGE_DURATION,
        Unit::Seconds,
        "Time per pipeline stage (decode, detect, align, embed, search)"
    );
    describe_histogram!(FACES_PER_PHOTO, "Faces detected per analysed photo");
    describe_counter!(QUEUE_REJECTED, "Inference jobs refused because the queue was full (429)");
    describe_gauge!(QUEUE_DEPTH, "Inference jobs waiting for a thread");
    describe_gauge!(QUEUE_RUNNING, "Inference jobs running");
    describe_gauge!(QUEUE_CAPACITY, "Inference jobs that may wait");
    describe_gauge!(GALLERY_FACES, "Faces in the in-memory gallery");
    describe_gauge!(GALLERY_PERSONS, "Persons with at least one searchable face");
    describe_gauge!(GALLERY_OTHER_MODEL, "Stored faces embedded by another model (never compared)");
    describe_counter!(
        "visage_webhook_deliveries_total",
        "Attempts to deliver an event to a webhook or MQTT, by outcome (delivered, retrying, failed)"
    );
    describe_histogram!("visage_webhook_delivery_seconds", Unit::Seconds, "Time per delivery attempt");
    describe_gauge!(
        "visage_webhook_pending",
        "Events a webhook (or the MQTT publisher, by its id) has still to receive"
    );
    describe_gauge!("visage_events_waiting", "Identify events waiting in memory for the database to be back");
    describe_counter!(
        "visage_events_dropped_total",
        "Identify events dropped because the queue for a database that is down was full"
    );
}

/// One answered HTTP request.
pub fn record_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let labels = [("method", method.to_string()), ("route", route.to_string()), ("status", status.to_string())];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, &labels).record(elapsed.as_secs_f64());
}

/// Time spent in one pipeline stage.
pub fn record_stage(stage: &'static str, elapsed: Duration) {
    metrics::histogram!(STAGE_DURATION, "stage" => stage).record(elapsed.as_secs_f64());
}

/// The faces a detection found in one photo.
pub fn record_faces(count: usize) {
    metrics::histogram!(FACES_PER_PHOTO).record(count as f64);
}

/// A job refused by the full inference queue.
pub fn record_rejection() {
    metrics::counter!(QUEUE_REJECTED).increment(1);
}

/// Changes read from the change log and applied by a replica.
pub fn record_changes_followed(count: usize) {
    metrics::counter!(CHANGES_FOLLOWED).increment(count as u64);
}

/// Values read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub queue_depth: usize,
    pub running: usize,
    pub queue_capacity: usize,
    pub gallery_faces: usize,
    pub gallery_persons: usize,
    pub gallery_other_model: usize,
    pub database_up: bool,
}

/// The Prometheus text exposition, with `snapshot`'s gauges set first.
pub fn render(snapshot: Snapshot) -> Option<String> {
    let handle = prometheus()?;
    metrics::gauge!(QUEUE_DEPTH).set(snapshot.queue_depth as f64);
    metrics::gauge!(QUEUE_RUNNING).set(snapshot.running as f64);
    metrics::gauge!(QUEUE_CAPACITY).set(snapshot.queue_capacity as f64);
    metrics::gauge!(GALLERY_FACES).set(snapshot.gallery_faces as f64);
    metrics::gauge!(GALLERY_PERSONS).set(snapshot.gallery_persons as f64);
    metrics::gauge!(GALLERY_OTHER_MODEL).set(snapshot.gallery_other_model as f64);
    metrics::gauge!(DATABASE_UP).set(if snapshot.database_up { 1.0 } else { 0.0 });
    handle.run_upkeep();
    Some(handle.render())
}

/// tract warns that opset 21 is newer than it is tested with; the parity tests
/// cover these models, so that warning is hidden unless asked for. PostgreSQL's
/// notices at start-up ("relation already exists, skipping") are not news.
pub const DEFAULT_LOG_FILTER: &str = "info,tract_onnx=error,sqlx::postgres::notice=warn";

/// What keeps the log and trace outputs running (the OTLP exporter flushes
/// when it is dropped).
pub struct TracingGuard {
    #[cfg(feature = "otel")]
    _otel: Option<crate::otel::Guard>,
}

/// Where request spans go over OTLP/HTTP (with the `otel` feature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Otlp {
    /// e.g. `http://collector:4318/v1/traces`.
    pub endpoint: String,
    /// JSON instead of protobuf.
    pub json: bool,
}

/// Logs to standard error (JSON lines with `json`), and with the `otel`
/// feature and an OTLP endpoint, spans exported over OpenTelemetry.
pub fn init_tracing(json: bool, otlp: Option<&Otlp>) -> anyhow::Result<TracingGuard> {
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
        if let Some(otlp) = otlp {
            let (layer, guard) = crate::otel::layer(&otlp.endpoint, otlp.json)?;
            let _ = registry.with(layer).try_init();
            return Ok(TracingGuard { _otel: Some(guard) });
        }
        let _ = registry.try_init();
        Ok(TracingGuard { _otel: None })
    }
    #[cfg(not(feature = "otel"))]
    {
        if otlp.is_some() {
            anyhow::bail!("--otlp-endpoint needs a build with `--features otel`");
        }
        let _ = registry.try_init();
        Ok(TracingGuard {})
    }
}
