//! CORS for the routes that take part in it (the admin and telemetry APIs), through
//! tower-http's `CorsLayer` with our allow-list (`KEEL_CORS_ALLOWED_ORIGINS`: exact origins and
//! single-label wildcards, matched by `CorsOrigins::allows`).
//!
//! Every response of a CORS route carries `Vary: Origin` (tower-http sets its `Vary` list on
//! every answer of the layer), with or without `Access-Control-Allow-Origin`: with an allow-list
//! the answer depends on the Origin header, so a shared cache must key on it (the Fetch
//! standard's rule). Emitting `Vary` only together with ACAO — the bug class in the field
//! reports — lets a cache serve a response without ACAO (fetched by a server, no Origin) to a
//! browser origin that is allowed, or the reverse. Routes outside CORS send neither header.

use crate::CorsOrigins;
use axum::http::{header, HeaderName, Method};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Browsers may cache a preflight this long.
const MAX_AGE: Duration = Duration::from_secs(600);

pub(crate) fn cors(origins: &CorsOrigins) -> CorsLayer {
    let origins = origins.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |o, _| o.to_str().is_ok_and(|o| origins.allows(o))))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-org-id"),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            header::RETRY_AFTER,
            HeaderName::from_static("ratelimit"),
            HeaderName::from_static("ratelimit-policy"),
            HeaderName::from_static("x-ratelimit-limit"),
            HeaderName::from_static("x-ratelimit-remaining"),
            HeaderName::from_static("x-ratelimit-reset"),
        ])
        .max_age(MAX_AGE)
}
