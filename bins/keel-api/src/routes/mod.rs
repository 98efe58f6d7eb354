//! The route table: every path the server answers and the middleware each group carries.
//!
//! Layer order (outermost first), for every request ([`edge`]): sensitive headers
//! (`Authorization`, `Cookie`, `Set-Cookie` marked so no log or span prints them), request id
//! (a malformed inbound `X-Request-Id` dropped, then tower-http's `SetRequestId` and
//! `PropagateRequestId`), the access log (tower-http's `TraceLayer`: one line with the route
//! template, status and latency), catch-panic (500 problem+json; inside the two above so a
//! panic keeps its request id and its access-log line), problem bodies (framework errors
//! rewritten as problem+json), header bounds (414/431 problem+json), internal-header stripping,
//! gzip (JSON and CSV of 1 KiB or more), body limit, the refused-write note (a write the database
//! refused for lack of space degrades health: `write_health`), route timing. Then per group.
//! `/api/admin/*`: CORS (tower-http, our allow-list), the `admin_api` rate-limit floor (keyed by
//! the signed session cookie or a cached token identity, so no database round trip), the time
//! budget (`KEEL_REQUEST_TIMEOUT`), the root session middleware, then the handlers' own
//! authorization (before the body is judged: a caller without the permission gets 403, not a
//! 422 about its body). `/api/auth/*`: the shared `public_ingress` limit (bounded by its own
//! 250 ms deadline), the time budget, then the session middleware; sign-in also has its own,
//! usually shorter, budget (`KEEL_SIGN_IN_TIMEOUT`).
//!
//! The time budget sits inside CORS and the limiters so that its 503 still carries their
//! headers (a browser can read it; the client sees its remaining quota), and outside the
//! session middleware so that the session lookup is bounded too.
//!
//! `/metrics` is not here: it is served on its own listener (`KEEL_METRICS_BIND`, see
//! [`metrics_router`]), and the public port answers it 404.

mod auth;
mod health;
mod invoices;
mod metrics;
pub(crate) mod openapi;
mod recovery;
pub(crate) mod schema;
mod telemetry;

pub(crate) use auth::start_session;
pub use health::is_internal_caller;
pub(crate) use health::with_queue_section;
pub(crate) use invoices::list_for as invoice_list_for;
pub(crate) use metrics::metrics_router;
pub(crate) use openapi::operations;
pub use openapi::ApiDoc;
// For the report handlers' annotations (`crate::reports`).
pub(crate) use invoices::OrgHeader;
pub(crate) use openapi::{BadRequest, Invalid};
pub(crate) use schema::{date_schema, one_of, wide_integer};

use crate::auth::{session_middleware, COOKIE_NAME};
use crate::{ApiError, AppState};
use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::http::header;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use axum::Router;
use keel_ratelimit::layer::{KeyFn, ProblemTypes, RateLimitLayer, RequestInfo};
use keel_ratelimit::{ClientIpResolver, LimitKey};
use std::net::SocketAddr;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;

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
        .layer(user_floor(&state, state.limits.admin_api.clone()))
        .layer(crate::middleware::cors(&state.config.cors));
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
        .layer(crate::middleware::cors(&state.config.cors));
    let app = Router::new()
        .merge(admin)
        .merge(public)
        .merge(ingest)
        .merge(crate::console::router(&state))
        .merge(crate::ops::routes::router(&state))
        .route("/api/telemetry/config", get(telemetry::config))
        .route("/api/health/live", get(health::live))
        .route("/api/health", get(health::health))
        .route("/api/openapi.json", get(openapi::document))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    edge(app, &state).with_state(state)
}

/// The layers every request passes, whatever its route (the order is in the module doc). A
/// separate function so a test can put a probe route behind exactly this stack.
fn edge(app: Router<AppState>, state: &AppState) -> Router<AppState> {
    let timing = keel_telemetry::RouteTimingLayer::new(
        state.metrics.http(),
        Some(state.recorder.clone()),
        |req: &axum::extract::Request| {
            req.extensions().get::<axum::extract::MatchedPath>().map(|m| m.as_str().to_owned())
        },
    );
    use crate::middleware as m;
    let stack = ServiceBuilder::new()
        .layer(SetSensitiveHeadersLayer::new([header::AUTHORIZATION, header::COOKIE, header::SET_COOKIE]))
        .map_request(m::drop_malformed_request_id)
        .layer(SetRequestIdLayer::new(m::REQUEST_ID, m::KeelRequestIds))
        .layer(PropagateRequestIdLayer::new(m::REQUEST_ID))
        .layer(m::access_log())
        .layer(CatchPanicLayer::custom(m::on_panic))
        .layer(from_fn(m::problem_bodies))
        .layer(from_fn(m::header_limits))
        .layer(from_fn(m::strip_internal_headers))
        .layer(m::compression());
    app.layer(timing)
        .layer(from_fn_with_state(state.clone(), crate::write_health::note_refused_writes))
        .layer(DefaultBodyLimit::max(state.config.body_limit as usize))
        .layer(stack)
}

pub(crate) fn peer(ext: &http::Extensions) -> Option<std::net::IpAddr> {
    ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()).or_else(|| ext.get::<SocketAddr>().map(|a| a.ip()))
}

/// A per-user limit (the `admin_api` floor, `operator_console`), keyed by user when the request
/// carries a usable identity and by client network otherwise, with no database access: the
/// cookie is verified by its HMAC and bearer tokens through the short-lived identity cache.
pub(crate) fn user_floor(
    state: &AppState,
    limiter: std::sync::Arc<dyn keel_ratelimit::Limiter>,
) -> RateLimitLayer<impl keel_ratelimit::layer::KeyExtractor> {
    let signer = state.session_signer.clone();
    let identities = state.identities.clone();
    RateLimitLayer::new(limiter)
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

/// OPTIONS on a CORS route. tower-http's CORS layer answers every OPTIONS itself, so this never
/// runs; it exists so the method router sends OPTIONS through the route's layers at all (a
/// method without a handler gets the router-wide 405 fallback, which sits outside them).
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
        let t = keel_testkit::TestDb::sqlite(crate::SCHEMAS).await;
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

    fn test_state_config() -> crate::Config {
        crate::Config::load(&keel_config::MapSource::new([])).unwrap()
    }

    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    /// Every log line of this test binary, as JSON. A global subscriber, installed once: a
    /// thread-scoped one (`set_default`) can miss events whose callsite interest another test
    /// thread cached first.
    fn captured_logs() -> &'static Captured {
        static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = Captured::default();
            let sink = logs.clone();
            let subscriber = tracing_subscriber::fmt().json().with_writer(move || sink.clone()).finish();
            tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber in unit tests");
            logs
        })
    }

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A handler that panics, behind the real edge stack on a real server: the client gets 500
    /// problem+json with its request id, the access log has the line, and the server (and the
    /// same connection) go on serving.
    #[tokio::test]
    async fn a_panicking_handler_answers_500_problem_json_with_its_request_id_and_is_logged() {
        let logs = captured_logs();
        let t = keel_testkit::TestDb::sqlite(crate::SCHEMAS).await;
        let state = AppState::new(t.db.clone(), test_state_config());
        async fn boom() -> &'static str {
            panic!("handler bug reached by input")
        }
        let app = edge(Router::new().route("/boom/{id}", get(boom)).route("/ok", get(|| async { "ok" })), &state)
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(crate::serve_router(
            listener,
            app,
            shutdown.clone(),
            std::time::Duration::from_secs(5),
            crate::HttpLimits::default(),
        ));
        let c = reqwest::Client::new();
        let r = c.get(format!("http://{addr}/boom/42")).header("x-request-id", "panic-probe-1").send().await.unwrap();
        assert_eq!(r.status(), 500);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        assert_eq!(r.headers()["x-request-id"], "panic-probe-1");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["type"], "https://keel.dev/problems/internal");
        assert!(!body.to_string().contains("handler bug"), "the panic message is not sent: {body}");
        // Same client (a kept-alive connection) and a new one: both served.
        assert_eq!(c.get(format!("http://{addr}/ok")).send().await.unwrap().status(), 200);
        assert_eq!(reqwest::get(format!("http://{addr}/ok")).await.unwrap().status(), 200);
        shutdown.cancel();
        server.await.unwrap().unwrap();
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let access = lines
            .iter()
            .find(|v| v["fields"]["message"] == "request" && v["span"]["request_id"] == "panic-probe-1")
            .unwrap_or_else(|| panic!("no access-log line for the panic:\n{text}"));
        assert_eq!(access["fields"]["status"], 500, "{access}");
        assert_eq!(access["span"]["route"], "/boom/{id}", "the template, not /boom/42: {access}");
        assert!(access["fields"]["latency_ms"].is_number());
        assert!(
            lines.iter().any(|v| v["fields"]["message"] == "request failed"
                && v["fields"]["cause"].as_str().is_some_and(|c| c.contains("panicked"))),
            "the panic is logged: {text}"
        );
    }

    /// `Authorization`, `Cookie` and `Set-Cookie` are marked sensitive at the edge, so any
    /// `Debug` of the headers (a log or span field) prints `Sensitive` instead of the value.
    #[tokio::test]
    async fn credentials_headers_are_marked_sensitive() {
        let t = keel_testkit::TestDb::sqlite(crate::SCHEMAS).await;
        let state = AppState::new(t.db.clone(), test_state_config());
        let probe = |h: HeaderMap| async move {
            let seen = [header::AUTHORIZATION, header::COOKIE, header::USER_AGENT]
                .map(|n| h.get(&n).map(|v| v.is_sensitive()).unwrap_or(false));
            let mut res = axum::response::IntoResponse::into_response(format!("{seen:?}"));
            res.headers_mut().insert(header::SET_COOKIE, "keel_session=secret; HttpOnly".parse().unwrap());
            res
        };
        let app = edge(Router::new().route("/probe", get(probe)), &state).with_state(state);
        let req = Request::get("/probe")
            .header("authorization", "Bearer secret-token")
            .header("cookie", "keel_session=secret")
            .header("user-agent", "test")
            .body(Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert!(res.headers()[header::SET_COOKIE].is_sensitive());
        let debug = format!("{:?}", res.headers());
        assert!(!debug.contains("secret"), "{debug}");
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"[true, true, false]");
    }

    /// A malformed inbound id is replaced (tower-http's SetRequestId only fills absent ones);
    /// a well-formed one is kept; two are one too many.
    #[tokio::test]
    async fn request_ids_follow_keel_ids_rule() {
        let t = keel_testkit::TestDb::sqlite(crate::SCHEMAS).await;
        let state = AppState::new(t.db.clone(), test_state_config());
        let app = edge(Router::new().route("/probe", get(|| async { "ok" })), &state).with_state(state);
        let id_for = |ids: &[&str]| {
            let mut req = Request::get("/probe");
            for id in ids {
                req = req.header("x-request-id", *id);
            }
            let app = app.clone();
            let req = req.body(Body::empty()).unwrap();
            async move { app.oneshot(req).await.unwrap().headers()["x-request-id"].to_str().unwrap().to_owned() }
        };
        assert_eq!(id_for(&["trace-abc_123"]).await, "trace-abc_123");
        for bad in [vec!["bad id"], vec!["x".repeat(200).leak() as &str], vec!["a", "b"]] {
            let id = id_for(&bad).await;
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{bad:?} gave {id}");
        }
        assert!(uuid::Uuid::parse_str(&id_for(&[]).await).is_ok());
    }
}
