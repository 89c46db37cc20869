//! Optional OpenTelemetry export (feature `otel`): the `tracing` spans (one
//! per request, with method, route, request id and key id) are exported over
//! OTLP/HTTP, and a request carrying a W3C `traceparent` header continues the
//! caller's trace.
use anyhow::{Context, Result};
use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// Flushes and stops the exporter when dropped (at the end of `serve`).
pub struct Guard(SdkTracerProvider);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(e) = self.0.shutdown() {
            eprintln!("visage: OpenTelemetry shutdown: {e}");
        }
    }
}

/// A layer exporting spans to `endpoint` (the full OTLP/HTTP traces URL, e.g.
/// `http://collector:4318/v1/traces`), as JSON or protobuf.
pub fn layer<S>(endpoint: &str, json: bool) -> Result<(impl Layer<S>, Guard)>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .with_protocol(if json { Protocol::HttpJson } else { Protocol::HttpBinary })
        .build()
        .context("building the OTLP exporter")?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("visage")
        .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    let tracer = provider.tracer("visage");
    Ok((tracing_opentelemetry::layer().with_tracer(tracer), Guard(provider)))
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Makes `span` a child of the trace in the request's `traceparent`, if any.
pub fn continue_trace(span: &tracing::Span, headers: &HeaderMap) {
    if headers.contains_key("traceparent") {
        let cx = TraceContextPropagator::new().extract(&Headers(headers));
        let _ = span.set_parent(cx);
    }
}
