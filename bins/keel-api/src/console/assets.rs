//! The console's stylesheet and script, compiled into the binary (no files to ship, no
//! third-party host) and served under `/console/assets/*` with cache headers. Pages link them
//! with `?v=<crate version>`, so a new release is fetched anew while a tab refreshing every few
//! seconds reuses its copy.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// How long a browser keeps an asset: a day; the version query changes with every release.
const CACHE_CONTROL: &str = "public, max-age=86400";

/// The query pages put on asset links.
pub(super) const VERSION: &str = env!("CARGO_PKG_VERSION");

const FILES: &[(&str, &str, &str)] = &[
    ("console.css", "text/css; charset=utf-8", include_str!("assets/console.css")),
    ("console.js", "text/javascript; charset=utf-8", include_str!("assets/console.js")),
];

pub(super) async fn serve(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL)),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "no such asset")
            .into_response(),
    }
}
