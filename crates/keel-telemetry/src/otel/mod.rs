//! OpenTelemetry traces over OTLP/HTTP (protobuf): the tracer provider built from
//! [`crate::OtelSettings`], the `tracing` bridge, and W3C trace-context helpers for the HTTP
//! edge. Behind the `otel` feature; off at run time unless an endpoint is configured.

mod client;
pub(crate) mod log_ids;

use crate::otel_settings::{OtelSettings, RootSampler, TraceSampler};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Set once traces are exported; the edge skips header parsing while it is false.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// True once [`crate::init_telemetry`] has installed an exporting tracer in this process.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Why the exporter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    /// No tokio runtime to run export requests on.
    #[error("OpenTelemetry export needs a tokio runtime; call init_telemetry from inside one")]
    NoRuntime,
    /// The HTTP client or the exporter refused the configuration.
    #[error("cannot set up the OTLP exporter for {endpoint}: {message}")]
    Exporter {
        /// The traces URL.
        endpoint: String,
        /// The underlying error.
        message: String,
    },
}

fn sampler(s: TraceSampler) -> Sampler {
    let root = |r: RootSampler| match r {
        RootSampler::AlwaysOn => Sampler::AlwaysOn,
        RootSampler::AlwaysOff => Sampler::AlwaysOff,
        RootSampler::Ratio(r) => Sampler::TraceIdRatioBased(r),
    };
    match s {
        TraceSampler::AlwaysOn => Sampler::AlwaysOn,
        TraceSampler::AlwaysOff => Sampler::AlwaysOff,
        TraceSampler::Ratio(r) => Sampler::TraceIdRatioBased(r),
        TraceSampler::ParentBased(r) => Sampler::ParentBased(Box::new(root(r))),
    }
}

/// The provider exporting in batches (the SDK's background thread; `OTEL_BSP_*` tune it).
pub(crate) fn provider(settings: &OtelSettings) -> Result<SdkTracerProvider, OtelError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| OtelError::NoRuntime)?;
    let failed = |e: &dyn std::fmt::Display| OtelError::Exporter {
        endpoint: settings.traces_endpoint.clone(),
        message: e.to_string(),
    };
    let client = client::TokioReqwest::new(runtime, settings.timeout).map_err(|e| failed(&e))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(settings.traces_endpoint.clone())
        .with_timeout(settings.timeout)
        .build()
        .map_err(|e| failed(&e))?;
    let resource = Resource::builder_empty()
        .with_detector(Box::new(TelemetryResourceDetector))
        .with_attributes(settings.resource_attributes.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())))
        .with_service_name(settings.service_name.clone())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler(settings.sampler))
        .with_resource(resource)
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    ENABLED.store(true, Ordering::Relaxed);
    Ok(provider)
}

/// The tracer the `tracing` bridge records into.
pub(crate) fn tracer(provider: &SdkTracerProvider) -> opentelemetry_sdk::trace::SdkTracer {
    provider.tracer("keel")
}

/// Continues an inbound W3C `traceparent` (and `tracestate`) in `span`, which must not have
/// been entered yet. Without a valid header, or while tracing is off, `span` stays a root.
pub fn continue_from_headers(span: &tracing::Span, headers: &http::HeaderMap) {
    if !enabled() || !headers.contains_key("traceparent") {
        return;
    }
    let extractor = opentelemetry_http::HeaderExtractor(headers);
    let cx = opentelemetry::propagation::TextMapPropagator::extract(&TraceContextPropagator::new(), &extractor);
    if cx.span().span_context().is_valid() {
        // Fails only when the span is disabled or already started; it then stays a root.
        let _ = span.set_parent(cx);
    }
}
