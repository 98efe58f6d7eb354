//! The access log through tower-http's `TraceLayer`: one structured line per request, in a
//! `request` span carrying the request id, method and route template, with status and latency.
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
        tracing::info_span!("request", request_id = %id, method = %req.method(), route = %route)
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct LogLine;

impl<B> OnResponse<B> for LogLine {
    fn on_response(self, res: &Response<B>, latency: Duration, _span: &Span) {
        let latency_ms = (latency.as_secs_f64() * 1_000_000.0).round() / 1000.0;
        tracing::info!(status = res.status().as_u16(), latency_ms, "request");
    }
}
