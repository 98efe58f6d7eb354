//! The tower `Layer`/`Service` (feature `tower`): one policy per layer; layers stack.
//!
//! ```text
//! Router::new().route(...)
//!     .layer(RateLimitLayer::new(export_limiter))          // inner: route-specific, tighter
//!     .layer(RateLimitLayer::new(admin_limiter)            // outer: the baseline floor
//!         .key_extractor(KeyFn::new(|r| user_of(r).map(LimitKey::user)))
//!         .peer_addr(|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
//! ```
//!
//! # Stacking rule
//! A request must pass every layer it goes through, outermost first; the first refusal answers
//! and the inner service is not called (an outer layer has already counted the request, as with
//! any stacked limiters). Each layer adds its policy to the draft-10 `RateLimit-Policy` and
//! `RateLimit` lists, so clients see every policy that applied. The single-valued legacy
//! `X-RateLimit-Limit/-Remaining/-Reset` trio describes the **tightest** policy: the one with
//! the fewest requests remaining (ties: the later reset); a refusal always reports remaining 0.
//!
//! # Peer address
//! The client address starts from the TCP peer, read from the request extensions by a
//! function (default: a `std::net::SocketAddr` extension). axum users either insert the
//! `SocketAddr` or pass `.peer_addr(|e| e.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()))`.
//! The resolved address is inserted as a [`ClientIp`] extension for handlers and inner layers.
//!
//! # Problem types
//! Refusals are `application/problem+json` with `type: "about:blank"` unless
//! [`RateLimitLayer::problem_types`] names the service's own URIs.

mod extract;
mod response;
mod service;

pub use extract::{ByClientIp, ClientIp, KeyExtractor, KeyFn, PeerAddrFn, RequestInfo};
pub use response::{
    ProblemTypes, ResponseBody, ABOUT_BLANK, PROBLEM_JSON, RATE_LIMITED_SLUG, UNAVAILABLE_SLUG, X_RATELIMIT_LIMIT,
    X_RATELIMIT_REMAINING, X_RATELIMIT_RESET,
};
pub use service::{RateLimitLayer, RateLimitService};
