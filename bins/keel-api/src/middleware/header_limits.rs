//! Bounds on the request line and headers, answered with problem+json (414, 431) before
//! anything else runs. hyper refuses oversized heads itself with an empty body; our limits are
//! lower than hyper's (`server::conn` raises hyper's header count above ours, and hyper's
//! buffer is about 400 KiB), so a client that breaks them gets an answer it can read. Only a
//! head past hyper's buffer still gets hyper's bare 431.

use crate::ApiError;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// hyper's own default, so the limit clients meet does not change.
pub(crate) const MAX_HEADER_COUNT: usize = 100;
/// Total bytes of header names and values: nginx's default (`large_client_header_buffers`
/// 4 × 8k), far above what a browser sends with a full cookie jar.
pub(crate) const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Every route's query is short; 8 KiB is what common proxies accept.
pub(crate) const MAX_URI_BYTES: usize = 8 * 1024;

pub(crate) async fn header_limits(req: Request, next: Next) -> Response {
    let uri_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            "URI too long",
            format!("the path and query are {uri_len} bytes; at most {MAX_URI_BYTES} are accepted"),
        )
        .into_response();
    }
    let h = req.headers();
    let bytes: usize = h.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    if h.len() > MAX_HEADER_COUNT || bytes > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            "Request header fields too large",
            format!(
                "the request has {} header fields in {bytes} bytes; at most {MAX_HEADER_COUNT} fields and {MAX_HEADER_BYTES} bytes are accepted",
                h.len()
            ),
        )
        .into_response();
    }
    next.run(req).await
}
