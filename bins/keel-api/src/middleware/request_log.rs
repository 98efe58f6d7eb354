//! `X-Request-Id` handling and one structured access-log line per request.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use keel_ids::RequestId;
use std::time::Instant;
use tracing::Instrument;

pub(crate) const REQUEST_ID: &str = "x-request-id";

/// Accepts a well-formed client request id (so a trace spans proxies), generates one
/// otherwise, echoes it on the response and logs method, route template, status and latency.
pub(crate) async fn request_log(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| RequestId::parse(v).ok())
        .unwrap_or_else(RequestId::generate);
    req.extensions_mut().insert(id.clone());
    // The template, never the raw path: ids in paths would explode log cardinality and leak data.
    let route =
        req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_else(|| "<unmatched>".into());
    let method = req.method().clone();
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let started = Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    span.in_scope(|| {
        tracing::info!(status = res.status().as_u16(), latency_ms = (latency_ms * 1000.0).round() / 1000.0, "request");
    });
    res
}
