//! `keel-ops smoke` against stub deployments (axum on port 0, metrics on a second listener as
//! keel-api does): a healthy one passes; one whose `/api/health` says degraded with a 200, and
//! one broken in subtler ways, fail naming each failed check. (The end-to-end run against
//! keel-api lives with keel-api's tests.)

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

#[derive(Clone)]
struct Deployment {
    health: (StatusCode, Value),
    live: &'static str,
    config: Value,
    metrics: &'static str,
    /// Whether the public port also serves the metrics (it must not).
    public_metrics: bool,
    admin: (StatusCode, bool),
}

const METRICS: &str = "\
# HELP http_server_request_duration_seconds Duration of HTTP server requests.
# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_bucket{method=\"GET\",route=\"/api/health\",status=\"2xx\",le=\"0.005\"} 3
http_server_request_duration_seconds_bucket{method=\"GET\",route=\"/api/health\",status=\"2xx\",le=\"0.01\"} 4
http_server_request_duration_seconds_bucket{method=\"GET\",route=\"/api/health\",status=\"2xx\",le=\"+Inf\"} 5
http_server_request_duration_seconds_sum{method=\"GET\",route=\"/api/health\",status=\"2xx\"} 0.031
http_server_request_duration_seconds_count{method=\"GET\",route=\"/api/health\",status=\"2xx\"} 5
# TYPE keel_ratelimit_decisions_total counter
keel_ratelimit_decisions_total{policy=\"admin_api\",outcome=\"allowed\"} 12
";

fn healthy() -> Deployment {
    Deployment {
        health: (
            StatusCode::OK,
            json!({"status": "ok", "checked_at": "2026-02-11T10:00:00Z", "services": {"app": "ok", "database": "ok"}}),
        ),
        live: r#"{"status":"ok"}"#,
        config: json!({"enabled": true, "sample_rate": 0.05, "admin_sample_rate": 0.2}),
        metrics: METRICS,
        public_metrics: false,
        admin: (StatusCode::UNAUTHORIZED, true),
    }
}

fn rate_headers(h: &mut HeaderMap) {
    let mut put = |k: &'static str, v: &str| {
        h.insert(HeaderName::from_static(k), HeaderValue::from_str(v).unwrap());
    };
    put("ratelimit-policy", "\"admin_api\";q=60;w=60");
    put("ratelimit", "\"admin_api\";r=59;t=1");
    put("x-ratelimit-limit", "60");
    put("x-ratelimit-remaining", "59");
    put("x-ratelimit-reset", "1770804001");
}

async fn listen(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn metrics_route(m: &'static str) -> Router {
    Router::new().route(
        "/metrics",
        get(move || async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], m) }),
    )
}

/// (base URL, metrics URL) of a stub deployment.
async fn serve(d: Deployment) -> (String, String) {
    let (h, l, c, m, a) = (d.health, d.live, d.config, d.metrics, d.admin);
    let mut app = Router::new()
        .route("/api/health", get(move || async move { (h.0, [(header::CACHE_CONTROL, "no-store")], axum::Json(h.1)) }))
        .route("/api/health/live", get(move || async move { ([(header::CONTENT_TYPE, "application/json")], l) }))
        .route("/api/telemetry/config", get(move || async move { axum::Json(c) }))
        .route(
            "/api/admin/invoices",
            get(move || async move {
                let mut headers = HeaderMap::new();
                if a.1 {
                    rate_headers(&mut headers);
                }
                (a.0, headers, "{\"title\":\"Unauthorized\"}")
            }),
        );
    if d.public_metrics {
        app = app.merge(metrics_route(m));
    }
    let metrics = listen(metrics_route(m)).await;
    (listen(app).await, metrics)
}

/// Runs `keel-ops smoke --json` off the runtime (the stub server needs it) and returns
/// (exit, report).
async fn smoke(urls: &(String, String)) -> (i32, Value, String) {
    let (base, metrics) = urls.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        super::ops(&["smoke", "--base-url", &base, "--metrics-url", &metrics, "--json"], &[])
    })
    .await
    .unwrap();
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("exit {code}: {out}{err}"));
    (code, v, err)
}

fn failed(v: &Value) -> Vec<String> {
    v["failed"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

fn detail(v: &Value, check: &str) -> String {
    v["checks"].as_array().unwrap().iter().find(|c| c["check"] == check).unwrap()["detail"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_deployment_passes_every_check() {
    let urls = serve(healthy()).await;
    let (code, v, err) = smoke(&urls).await;
    assert_eq!(code, 0, "{v:#}{err}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["checks"].as_array().unwrap().len(), 6);
    assert!(detail(&v, "health").contains("database=ok"));
    assert!(detail(&v, "metrics").contains("families"), "{v:#}");
    assert!(detail(&v, "metrics_not_public").contains("404"), "{v:#}");

    let (b, m) = urls.clone();
    let (code, out, _) = tokio::task::spawn_blocking(move || {
        super::ops(&["smoke", "--base-url", &b, "--metrics-url", m.trim_start_matches("http://")], &[])
    })
    .await
    .unwrap();
    assert_eq!(code, 2, "a metrics URL without http:// is a usage error: {out}");
    let (b, m) = urls.clone();
    let (code, out, _) =
        tokio::task::spawn_blocking(move || super::ops(&["smoke", "--base-url", &b, "--metrics-url", &m], &[]))
            .await
            .unwrap();
    assert_eq!(code, 0);
    assert!(out.contains("PASS  health") && out.contains("all 6 checks passed"), "{out}");
    assert!(!out.contains('\u{1b}'), "no colour when piped");

    // Without --metrics-url the scrape is skipped, not failed.
    let b = urls.0.clone();
    let (code, out, _) =
        tokio::task::spawn_blocking(move || super::ops(&["smoke", "--base-url", &b], &[])).await.unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SKIP  metrics") && out.contains("--metrics-url"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn degraded_health_with_a_200_fails_naming_the_check() {
    let mut d = healthy();
    d.health.1 = json!({"status": "degraded", "checked_at": "2026-02-11T10:00:00Z", "services": {"app": "ok", "database": "error"}});
    let urls = serve(d).await;
    let (code, v, _) = smoke(&urls).await;
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(failed(&v), ["health"]);
    let d = detail(&v, "health");
    assert!(d.contains("HTTP 200") && d.contains("degraded") && d.contains("disagree"), "{d}");

    let (b, m) = urls.clone();
    let (code, out, _) =
        tokio::task::spawn_blocking(move || super::ops(&["smoke", "--base-url", &b, "--metrics-url", &m], &[]))
            .await
            .unwrap();
    assert_eq!(code, 1);
    assert!(out.contains("FAIL  health") && out.contains("1 of 6 checks failed") && out.contains(": health"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_dependency_and_subtly_wrong_payloads_fail_by_name() {
    let d = Deployment {
        health: (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "degraded", "checked_at": "2026-02-11T10:00:00Z", "services": {"app": "ok", "database": "timeout"}}),
        ),
        live: "OK",
        config: json!({"enabled": true, "sample_rate": 0.05}),
        metrics: "# TYPE http_server_request_duration_seconds histogram\nhttp_server_request_duration_seconds_bucket{le=\"0.1\"} 3\n",
        public_metrics: true,
        admin: (StatusCode::UNAUTHORIZED, false),
    };
    let urls = serve(d).await;
    let (code, v, _) = smoke(&urls).await;
    assert_eq!(code, 1);
    assert_eq!(
        failed(&v),
        ["health", "health_live", "telemetry_config", "metrics", "metrics_not_public", "ratelimit_headers"]
    );
    assert!(detail(&v, "metrics_not_public").contains("KEEL_METRICS_BIND"));
    assert!(detail(&v, "health").contains("database=timeout"));
    assert!(detail(&v, "health_live").contains("not JSON"));
    assert!(detail(&v, "telemetry_config").contains("admin_sample_rate"));
    assert!(detail(&v, "metrics").contains("+Inf"));
    assert!(detail(&v, "ratelimit_headers").contains("RateLimit-Policy is missing"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_admin_route_fails_the_rate_limit_check() {
    let mut d = healthy();
    d.admin = (StatusCode::OK, true);
    let urls = serve(d).await;
    let (code, v, _) = smoke(&urls).await;
    assert_eq!(code, 1);
    assert_eq!(failed(&v), ["ratelimit_headers"]);
    assert!(detail(&v, "ratelimit_headers").contains("not protected"));
}

#[test]
fn unreachable_and_bad_urls() {
    // Port 1 on loopback: nothing listens, so every check fails with a reason, exit 1.
    let (code, out, err) = super::ops(
        &[
            "smoke",
            "--base-url",
            "http://127.0.0.1:1",
            "--metrics-url",
            "http://127.0.0.1:1",
            "--json",
            "--timeout",
            "2s",
        ],
        &[],
    );
    assert_eq!(code, 1, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(failed(&v).len(), 6);
    assert!(detail(&v, "health").contains("cannot connect"), "{v:#}");
    let (code, _, err) = super::ops(&["smoke", "--base-url", "localhost:8080"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("--base-url"), "{err}");
    let (code, _, err) = super::ops(&["smoke", "--base-url", "https://example.com"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("TLS"), "{err}");
}
