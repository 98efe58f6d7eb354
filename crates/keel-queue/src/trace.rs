//! The W3C trace context a job carries from the span that enqueued it to the worker's span that
//! runs it, stored as text in `keel_jobs.trace_context`: the `traceparent` value, then `;` and
//! the `tracestate` value when there is one (a traceparent never holds a `;`, so the first one
//! splits them).
//!
//! With the `otel` feature the context is read from the current `tracing` span through
//! tracing-opentelemetry; without it, or while no OpenTelemetry layer is installed, nothing is
//! captured (NULL) and the job's span is a root.

use tracing::Span;

/// Longer than any real context (a traceparent is 55 bytes, a tracestate at most 512): a bound
/// on what a caller may store through [`crate::NewJob::trace_context`].
pub const MAX_TRACE_CONTEXT_BYTES: usize = 1024;

/// The current span's context as stored text, if a sampled or unsampled span is recording one.
#[cfg(feature = "otel")]
pub(crate) fn capture() -> Option<String> {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let span = Span::current();
    if span.is_none() {
        return None;
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = std::collections::HashMap::new();
    opentelemetry_sdk::propagation::TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    let parent = carrier.remove("traceparent")?;
    Some(match carrier.remove("tracestate").filter(|s| !s.is_empty()) {
        Some(state) => format!("{parent};{state}"),
        None => parent,
    })
}

/// Without OpenTelemetry there is no context to carry.
#[cfg(not(feature = "otel"))]
pub(crate) fn capture() -> Option<String> {
    None
}

/// Makes `span` (not yet entered) a child of the stored context. A malformed value is ignored:
/// the span becomes a root, and the job runs as it would have.
#[cfg(feature = "otel")]
pub(crate) fn continue_in(span: &Span, stored: &str) {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let (parent, state) = stored.split_once(';').unwrap_or((stored, ""));
    let carrier: std::collections::HashMap<String, String> =
        [("traceparent".to_owned(), parent.to_owned()), ("tracestate".to_owned(), state.to_owned())].into();
    let cx = opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// Without OpenTelemetry the job's span stays a root.
#[cfg(not(feature = "otel"))]
pub(crate) fn continue_in(_span: &Span, _stored: &str) {}

#[cfg(all(test, feature = "otel"))]
mod tests {
    use super::*;
    use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    fn traced() -> (impl tracing::Subscriber + Send + Sync, opentelemetry_sdk::trace::SdkTracerProvider) {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        (tracing_subscriber::registry().with(layer), provider)
    }

    fn ids(span: &Span) -> (String, String) {
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        (sc.trace_id().to_string(), sc.span_id().to_string())
    }

    #[test]
    fn a_captured_context_makes_the_job_span_a_child_of_the_enqueuing_span() {
        let (subscriber, _provider) = traced();
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!("request");
            let stored = request.in_scope(capture).expect("a context inside a traced span");
            let (trace, span) = ids(&request);
            assert_eq!(stored, format!("00-{trace}-{span}-01"));
            let job = tracing::info_span!("job");
            continue_in(&job, &stored);
            let (job_trace, job_span) = ids(&job);
            assert_eq!(job_trace, trace, "one trace across enqueue and run");
            assert_ne!(job_span, span);
        });
    }

    #[test]
    fn tracestate_rides_along() {
        let (subscriber, _provider) = traced();
        tracing::subscriber::with_default(subscriber, || {
            let inbound = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01;vendor=abc,other=x%20y";
            let request = tracing::info_span!("request");
            continue_in(&request, inbound);
            let stored = request.in_scope(capture).unwrap();
            let (parent, state) = stored.split_once(';').expect("tracestate kept");
            assert!(parent.starts_with("00-0af7651916cd43dd8448eb211c80319c-"), "{stored}");
            assert!(!parent.contains("b7ad6b7169203331"), "the request span is the new parent: {stored}");
            assert_eq!(state, "vendor=abc,other=x%20y");
        });
    }

    #[test]
    fn nothing_is_captured_without_an_opentelemetry_layer_or_outside_a_span() {
        let plain = tracing_subscriber::registry();
        tracing::subscriber::with_default(plain, || {
            assert_eq!(tracing::info_span!("request").in_scope(capture), None);
        });
        let (subscriber, _provider) = traced();
        tracing::subscriber::with_default(subscriber, || assert_eq!(capture(), None));
    }

    #[test]
    fn a_malformed_stored_context_leaves_the_job_span_a_root() {
        let (subscriber, _provider) = traced();
        tracing::subscriber::with_default(subscriber, || {
            let job = tracing::info_span!("job");
            continue_in(&job, "not-a-traceparent;x=y");
            let (trace, _) = ids(&job);
            assert_ne!(trace, "00000000000000000000000000000000");
            assert!(job.context().span().span_context().is_valid());
        });
    }
}
