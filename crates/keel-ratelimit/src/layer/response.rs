//! The headers on limited responses, and the RFC 9457 problem responses for 429 and 503.

use crate::{Decision, Quota};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::{Either, Full};
use std::sync::Arc;
use std::time::Duration;

/// The layer's response body: the inner service's body, or a problem document.
pub type ResponseBody<B> = Either<B, Full<Bytes>>;

/// The media type of every refusal the layer writes (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";
/// RFC 9457's default problem type: no semantics beyond the HTTP status code.
pub const ABOUT_BLANK: &str = "about:blank";
/// The slug a service with its own problem namespace may give a quota refusal (429).
pub const RATE_LIMITED_SLUG: &str = "rate-limited";
/// The slug for "the limiter could not decide in time" (503): not the client's fault.
pub const UNAVAILABLE_SLUG: &str = "rate-limiter-unavailable";

/// The `type` URIs of the layer's two problem documents. The default is `about:blank` for
/// both (the status code says it all); a service with its own problem namespace sets its URIs,
/// e.g. [`ProblemTypes::under`]`("https://example.com/problems/")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemTypes {
    /// The `type` of a 429 quota refusal.
    pub rate_limited: Arc<str>,
    /// The `type` of a 503 "could not decide in time".
    pub unavailable: Arc<str>,
}

impl Default for ProblemTypes {
    fn default() -> Self {
        Self { rate_limited: Arc::from(ABOUT_BLANK), unavailable: Arc::from(ABOUT_BLANK) }
    }
}

impl ProblemTypes {
    /// `<base>rate-limited` and `<base>rate-limiter-unavailable`.
    pub fn under(base: &str) -> Self {
        Self {
            rate_limited: Arc::from(format!("{base}{RATE_LIMITED_SLUG}")),
            unavailable: Arc::from(format!("{base}{UNAVAILABLE_SLUG}")),
        }
    }
}

/// The limit of the tightest policy that applied (legacy, single-valued).
pub const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// What remains of the tightest policy that applied (legacy, single-valued).
pub const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// Unix epoch seconds at which the bucket is full again (as GitHub's API).
pub const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// Whole seconds, rounded up: a client told to wait `t` must not come back early.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// An RFC 9651 sf-string: quoted, with `"` and `\` escaped; other non-printables dropped.
fn sf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().filter(|c| (' '..='~').contains(c)) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Adds this item to a structured-field list header, after any items already there.
fn append_list(headers: &mut HeaderMap, name: HeaderName, item: String) {
    let combined = match headers.get(&name).and_then(|v| v.to_str().ok()) {
        Some(existing) if !existing.trim().is_empty() => format!("{existing}, {item}"),
        _ => item,
    };
    if let Ok(v) = HeaderValue::from_str(&combined) {
        headers.insert(name, v);
    }
}

fn header_u64(headers: &HeaderMap, name: &HeaderName) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Adds one policy's rate-limit headers. See the module docs for how stacked layers combine.
pub(crate) fn add_headers(headers: &mut HeaderMap, policy: &str, quota: &Quota, d: &Decision, unix_now: Duration) {
    let name = sf_string(policy);
    let remaining = d.remaining();
    append_list(headers, RATELIMIT_POLICY, format!("{name};q={};w={}", quota.count(), quota.window_secs()));
    append_list(headers, RATELIMIT, format!("{name};r={remaining};t={}", ceil_secs(d.next_unit_after())));

    let reset = ceil_secs(unix_now + d.reset_after());
    let tighter = match (header_u64(headers, &X_RATELIMIT_REMAINING), header_u64(headers, &X_RATELIMIT_RESET)) {
        (Some(r), Some(t)) => u64::from(remaining) < r || (u64::from(remaining) == r && reset > t),
        _ => true,
    };
    if tighter {
        headers.insert(X_RATELIMIT_LIMIT, HeaderValue::from(d.limit()));
        headers.insert(X_RATELIMIT_REMAINING, HeaderValue::from(remaining));
        headers.insert(X_RATELIMIT_RESET, HeaderValue::from(reset));
    }
}

fn problem<B>(status: StatusCode, retry_after_secs: u64, body: serde_json::Value) -> Response<ResponseBody<B>> {
    let mut res = Response::new(Either::Right(Full::new(Bytes::from(body.to_string()))));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
    res
}

/// 429 with a problem document, `Retry-After`, and the policy's headers.
pub(crate) fn too_many_requests<B>(
    types: &ProblemTypes,
    policy: &str,
    quota: &Quota,
    d: &Decision,
    unix_now: Duration,
) -> Response<ResponseBody<B>> {
    let retry = ceil_secs(d.retry_after()).max(1);
    let body = serde_json::json!({
        "type": &*types.rate_limited,
        "title": "Too Many Requests",
        "status": 429,
        "detail": format!("Rate limit {policy:?} ({} requests per {} s, bursts of {}) exceeded; retry in {retry} s.",
            quota.count(), quota.window_secs(), quota.burst()),
        "policy": policy,
        "retry_after": retry,
        "violated-policies": [policy],
    });
    let mut res = problem(StatusCode::TOO_MANY_REQUESTS, retry, body);
    add_headers(res.headers_mut(), policy, quota, d, unix_now);
    res
}

/// 503 when the limiter could not decide and the policy fails closed.
pub(crate) fn unavailable<B>(types: &ProblemTypes, policy: &str, retry_after: Duration) -> Response<ResponseBody<B>> {
    let retry = ceil_secs(retry_after).max(1);
    let body = serde_json::json!({
        "type": &*types.unavailable,
        "title": "Service Unavailable",
        "status": 503,
        "detail": format!("The rate limiter for {policy:?} could not decide in time; retry in {retry} s."),
        "policy": policy,
        "retry_after": retry,
    });
    problem(StatusCode::SERVICE_UNAVAILABLE, retry, body)
}
