//! gzip for the responses worth it: JSON (invoice lists, reports) and CSV exports of 1 KiB or
//! more, when the client accepts it. Small bodies, problem details and metrics stay as they are.

use axum::http::{header, Extensions, HeaderMap, StatusCode, Version};
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;

/// Below this, gzip's header and a CPU round cost more than the bytes saved.
const MIN_BYTES: u16 = 1024;

fn json_or_csv(_: StatusCode, _: Version, h: &HeaderMap, _: &Extensions) -> bool {
    let ct = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("application/json") || mime.eq_ignore_ascii_case("text/csv")
}

pub(crate) fn compression() -> CompressionLayer<impl Predicate> {
    type Check = fn(StatusCode, Version, &HeaderMap, &Extensions) -> bool;
    CompressionLayer::new().compress_when(SizeAbove::new(MIN_BYTES).and(json_or_csv as Check))
}
