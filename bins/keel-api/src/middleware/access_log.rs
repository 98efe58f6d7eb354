//! The access log through tower-http's `TraceLayer`: one structured line per request, in a
//! `request` span carrying the request id, method and route template, with status and latency.
//! The same span is the OpenTelemetry server span (HTTP semantic conventions:
//! `http.request.method`, `http.route`, `http.response.status_code`), continuing an inbound W3C
//! `traceparent` when tracing is on.
//! The template (`MatchedPath`), never the raw path: ids in paths would explode log cardinality
//! and leak data. Only `on_response` logs; tower-http's request and failure lines are off, so a
//! 5xx is still one line (its cause is logged where it is known, by `ApiError`).

use super::request_id::REQUEST_ID;
use axum::extract::MatchedPath;
use axum::http::{Request, Response};
use std::time::Duration;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnBodyChunk, MakeSpan, OnResponse, TraceLayer};
use tracing::Span;

pub(crate) type AccessLog =
    TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan, (), LogLine, DefaultOnBodyChunk, (), ()>;

pub(crate) fn access_log() -> AccessLog {
    TraceLayer::new_for_http().make_span_with(RequestSpan).on_request(()).on_response(LogLine).on_eos(()).on_failure(())
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, req: &Request<B>) -> Span {
        // Set by `SetRequestId` outside this layer, so always present and well-formed.
        let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
        let route = req.extensions().get::<MatchedPath>().map_or("<unmatched>", MatchedPath::as_str);
        let matched = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
        let span = tracing::info_span!(
            "request",
            request_id = %id,
            method = %req.method(),
            route = %route,
            otel.name = %OtelName(req.method().as_str(), matched),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.request.method = %req.method(),
            http.route = matched,
            http.response.status_code = tracing::field::Empty,
        );
        #[cfg(feature = "otel")]
        keel_telemetry::otel::continue_from_headers(&span, req.headers());
        span
    }
}

/// `{method} {route}`, or the method alone for an unmatched path (semantic conventions: a span
/// name never carries a raw path).
struct OtelName<'a>(&'a str, Option<&'a str>);

impl std::fmt::Display for OtelName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.1 {
            Some(route) => write!(f, "{} {route}", self.0),
            None => f.write_str(self.0),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct LogLine;

impl<B> OnResponse<B> for LogLine {
    fn on_response(self, res: &Response<B>, latency: Duration, span: &Span) {
        span.record("http.response.status_code", res.status().as_u16());
        if res.status().is_server_error() {
            span.record("otel.status_code", "error");
        }
        let latency_ms = (latency.as_secs_f64() * 1_000_000.0).round() / 1000.0;
        tracing::info!(status = res.status().as_u16(), latency_ms, "request");
    }
}
