//! Strips the server's internal headers (`X-Keel-*`, e.g. the org hint) from every inbound
//! request before anything else runs: only the server itself may set them, after the session
//! is resolved, so a client cannot inject an active-org context.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

pub(crate) const INTERNAL_PREFIX: &str = "x-keel-";

pub(crate) async fn strip_internal_headers(mut req: Request, next: Next) -> Response {
    let internal: Vec<_> = req.headers().keys().filter(|k| k.as_str().starts_with(INTERNAL_PREFIX)).cloned().collect();
    for k in internal {
        req.headers_mut().remove(&k);
    }
    next.run(req).await
}
