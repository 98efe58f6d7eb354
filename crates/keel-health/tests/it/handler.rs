//! The axum readiness handler through a real server on port 0: 200 ok, 503 degraded, the
//! report as the body, never cached; with the service as router state and without.

use crate::support::{builder, ms};
use keel_health::{check_fn, handler, CheckError, HealthService};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Serves `app` on 127.0.0.1:0 until the test ends; returns its base URL.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A service whose one required check passes while `up` is true.
fn switchable(up: Arc<AtomicBool>) -> HealthService {
    builder(ms(2_000))
        .check(check_fn("database", move |_| {
            let ok = up.load(Ordering::SeqCst);
            async move {
                if ok {
                    Ok(())
                } else {
                    Err(CheckError::error("connection refused"))
                }
            }
        }))
        .build()
        .unwrap()
}

#[tokio::test]
async fn readiness_answers_200_then_503_with_the_report_and_no_store() {
    let up = Arc::new(AtomicBool::new(true));
    let app = axum::Router::new().route("/ready", handler::readiness_route(switchable(up.clone())));
    let base = serve(app).await;
    let client = reqwest::Client::new();

    let res = client.get(format!("{base}/ready")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"status":"ok","checked_at":"2026-01-02T03:04:05.678Z","services":{"app":"ok","database":"ok"}}"#
    );

    up.store(false, Ordering::SeqCst);
    let res = client.get(format!("{base}/ready")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body = res.text().await.unwrap();
    assert_eq!(
        body,
        r#"{"status":"degraded","checked_at":"2026-01-02T03:04:05.678Z","services":{"app":"ok","database":"error"}}"#
    );
    assert!(!body.contains("refused"), "the cause is for the log only");

    let head = client.head(format!("{base}/ready")).send().await.unwrap();
    assert_eq!(head.status(), 503, "HEAD answers like GET");
}

#[tokio::test]
async fn the_handler_reads_the_service_from_router_state() {
    let up = Arc::new(AtomicBool::new(true));
    let app = axum::Router::new().route("/health", axum::routing::get(handler::readiness)).with_state(switchable(up));
    let base = serve(app).await;
    let res = reqwest::get(format!("{base}/health")).await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["services"]["database"], "ok");
}
