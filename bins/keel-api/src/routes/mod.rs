//! The route table: every path the server answers and the middleware each group carries.
//!
//! Layer order (outermost first): request id + access log, internal-header stripping, body
//! limit, route timing (together: [`edge`]); then per group. `/api/admin/*`: CORS, the
//! `admin_api` rate-limit floor (keyed by the signed session cookie or a cached token identity,
//! so no database round trip), the time budget (`KEEL_REQUEST_TIMEOUT`), the root session
//! middleware, then the handlers' own authorization. `/api/auth/*`: the shared `public_ingress`
//! limit (bounded by its own 250 ms deadline), the time budget, then the session middleware;
//! sign-in also has its own, usually shorter, budget (`KEEL_SIGN_IN_TIMEOUT`).
//!
//! The time budget sits inside CORS and the limiters so that its 503 still carries their
//! headers (a browser can read it; the client sees its remaining quota), and outside the
//! session middleware so that the session lookup is bounded too.

mod auth;
mod health;
mod invoices;
mod openapi;
mod recovery;
mod telemetry;

pub use health::is_internal_caller;
pub(crate) use health::with_queue_section;
pub(crate) use invoices::list_for as invoice_list_for;
pub(crate) use openapi::OPERATIONS;

use crate::auth::{session_middleware, COOKIE_NAME};
use crate::{ApiError, AppState};
use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use axum::Router;
use keel_ratelimit::layer::{KeyFn, ProblemTypes, RateLimitLayer, RequestInfo};
use keel_ratelimit::{ClientIpResolver, LimitKey};
use std::net::SocketAddr;

pub(crate) fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/api/admin/invoices", get(invoices::list).post(invoices::create).options(preflight))
        .route("/api/admin/invoices/bulk", post(invoices::create_bulk).options(preflight))
        .route("/api/admin/invoices/{id}", get(invoices::get_one).options(preflight))
        .route("/api/admin/invoices/{id}/payments", post(invoices::add_payment).options(preflight))
        .route("/api/admin/reports/revenue", get(crate::reports::revenue).options(preflight))
        .route("/api/admin/dashboard", get(crate::reports::dashboard).options(preflight))
        .layer(from_fn_with_state(state.clone(), session_middleware))
        .layer(from_fn_with_state(state.clone(), crate::middleware::time_budget))
        .layer(admin_floor(&state))
        .layer(from_fn_with_state(state.clone(), crate::middleware::cors));
    let public = Router::new()
        .route("/api/auth/sign-in", post(auth::sign_in))
        .route("/api/auth/sign-out", post(auth::sign_out))
        .route("/api/auth/forgot-password", post(recovery::forgot_password))
        .route("/api/auth/reset-password", post(recovery::reset_password))
        .layer(from_fn_with_state(state.clone(), session_middleware))
        .layer(from_fn_with_state(state.clone(), crate::middleware::time_budget))
        .layer(by_client_ip(&state, state.limits.public_ingress.clone()));
    let ingest = Router::new()
        .route("/api/telemetry/route-timing", post(telemetry::ingest).options(preflight))
        .layer(DefaultBodyLimit::max(keel_telemetry::MAX_BODY_BYTES))
        .layer(by_client_ip(&state, state.limits.telemetry_ingest.clone()))
        .layer(from_fn_with_state(state.clone(), crate::middleware::cors));
    let app = Router::new()
        .merge(admin)
        .merge(public)
        .merge(ingest)
        .route("/api/telemetry/config", get(telemetry::config))
        .route("/metrics", get(telemetry::metrics))
        .route("/api/health/live", get(health::live))
        .route("/api/health", get(health::health))
        .route("/api/openapi.json", get(openapi::document))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    edge(app, &state).with_state(state)
}

/// The layers every request passes, whatever its route (listed innermost first): route timing,
/// the body limit, internal-header stripping, request id + access log. A separate function so
/// a test can put a probe route behind exactly this stack.
fn edge(app: Router<AppState>, state: &AppState) -> Router<AppState> {
    let timing = keel_telemetry::RouteTimingLayer::new(
        state.metrics.http(),
        Some(state.recorder.clone()),
        |req: &axum::extract::Request| {
            req.extensions().get::<axum::extract::MatchedPath>().map(|m| m.as_str().to_owned())
        },
    );
    app.layer(timing)
        .layer(DefaultBodyLimit::max(state.config.body_limit as usize))
        .layer(from_fn(crate::middleware::strip_internal_headers))
        .layer(from_fn(crate::middleware::request_log))
}

fn peer(ext: &http::Extensions) -> Option<std::net::IpAddr> {
    ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()).or_else(|| ext.get::<SocketAddr>().map(|a| a.ip()))
}

/// The `admin_api` floor, keyed by user when the request carries a usable identity and by
/// client network otherwise, with no database access: the cookie is verified by its HMAC and
/// bearer tokens through the short-lived identity cache.
fn admin_floor(state: &AppState) -> RateLimitLayer<impl keel_ratelimit::layer::KeyExtractor> {
    let signer = state.session_signer.clone();
    let identities = state.identities.clone();
    RateLimitLayer::new(state.limits.admin_api.clone())
        .problem_types(problem_types())
        .client_ip(ClientIpResolver::new(state.config.trusted_proxies.clone()))
        .peer_addr(peer)
        .key_extractor(KeyFn::new(move |r: &RequestInfo<'_>| {
            let from_cookie = crate::auth::cookie_value_of(r.headers, COOKIE_NAME)
                .and_then(|v| signer.decode(v))
                .map(|c| LimitKey::user(c.user_id));
            let from_token =
                || crate::auth::bearer_token(r.headers).and_then(|t| identities.get(&t)).map(LimitKey::user);
            from_cookie.or_else(from_token).or_else(|| r.client_ip.map(LimitKey::ip))
        }))
}

fn by_client_ip(
    state: &AppState,
    limiter: std::sync::Arc<dyn keel_ratelimit::Limiter>,
) -> RateLimitLayer<keel_ratelimit::layer::ByClientIp> {
    RateLimitLayer::new(limiter)
        .problem_types(problem_types())
        .client_ip(ClientIpResolver::new(state.config.trusted_proxies.clone()))
        .peer_addr(peer)
}

/// The limiters' 429 and 503 carry Keel's problem types, like every other error of the API:
/// `https://keel.dev/problems/rate-limited` and `.../rate-limiter-unavailable`.
fn problem_types() -> ProblemTypes {
    ProblemTypes::under(crate::PROBLEM_BASE)
}

/// OPTIONS on a CORS route: the CORS middleware answers preflights before this runs; a plain
/// OPTIONS gets an empty 204.
async fn preflight() -> axum::http::StatusCode {
    axum::http::StatusCode::NO_CONTENT
}

async fn not_found() -> ApiError {
    ApiError::not_found("no route matches this path")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this route does not accept that method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{HeaderMap, Request};
    use tower::ServiceExt;

    /// The tenancy invariant "inbound `X-Keel-*` headers are stripped before anything runs",
    /// checked on the real edge stack: a probe route behind it reports the headers it received.
    /// (Nothing in the routes reads the org hint today, so a black-box request cannot tell
    /// whether the strip ran; this fails if the layer is dropped from `edge` or broken.)
    #[tokio::test]
    async fn edge_strips_inbound_internal_headers_before_any_route_runs() {
        let t = keel_testkit::TestDb::sqlite().await;
        let config = crate::Config::load(&keel_config::MapSource::new([])).unwrap();
        let state = AppState::new(t.db.clone(), config);
        let probe = |h: HeaderMap| async move {
            let mut names: Vec<String> = h.keys().map(|k| k.as_str().to_owned()).collect();
            names.sort();
            names.join(",")
        };
        let app = edge(Router::new().route("/probe", get(probe)), &state).with_state(state);
        let req = Request::get("/probe")
            .header("X-Keel-Org-Hint", uuid::Uuid::new_v4().to_string())
            .header("x-keel-internal", "1")
            .header("X-KEEL-ANYTHING", "1")
            .header("x-org-id", uuid::Uuid::new_v4().to_string())
            .header("x-keelish", "not internal: no dash after keel")
            .body(Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), 200);
        let body = axum::body::to_bytes(res.into_body(), 64 * 1024).await.unwrap();
        let seen = String::from_utf8(body.to_vec()).unwrap();
        assert!(!seen.contains("x-keel-"), "internal headers reached the route: {seen}");
        assert!(seen.split(',').any(|n| n == "x-org-id"), "other headers pass through: {seen}");
        assert!(seen.split(',').any(|n| n == "x-keelish"), "{seen}");
    }
}
