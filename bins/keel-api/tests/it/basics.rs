//! Request ids, problem+json errors, health, graceful drain — on both backends.

use crate::start;
use keel_testkit::{backend_tests, TestDb};
use std::time::Duration;

backend_tests!(liveness_and_health, request_ids_are_echoed_or_generated, unknown_routes_are_problem_json);

async fn liveness_and_health(t: TestDb) {
    let s = start(t).await;
    let c = reqwest::Client::new();
    let r = c.get(s.url("/api/health/live")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let r = c.get(s.url("/api/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["services"]["database"], "ok");
    assert!(chrono::DateTime::parse_from_rfc3339(body["checked_at"].as_str().unwrap()).is_ok());
}

async fn request_ids_are_echoed_or_generated(t: TestDb) {
    let s = start(t).await;
    let c = reqwest::Client::new();
    let r = c.get(s.url("/api/health/live")).header("x-request-id", "trace-abc_123").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-abc_123");
    // A malformed id (could forge log lines) is replaced, not echoed.
    let r = c.get(s.url("/api/health/live")).header("x-request-id", "bad id\twith tab").send().await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id, "bad id\twith tab");
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let r = c.get(s.url("/api/health/live")).send().await.unwrap();
    assert!(r.headers().contains_key("x-request-id"));
}

async fn unknown_routes_are_problem_json(t: TestDb) {
    let s = start(t).await;
    let c = reqwest::Client::new();
    let r = c.get(s.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], 404);
    assert_eq!(body["type"], "https://keel.dev/problems/not-found");
    let r = c.delete(s.url("/api/health/live")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

/// In-flight requests finish after shutdown starts; new connections are refused.
#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    use axum::routing::get;
    use std::sync::Arc;
    use tokio::sync::Notify;
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (e2, r2) = (entered.clone(), release.clone());
    let app = axum::Router::new().route(
        "/slow",
        get(move || {
            let (e, r) = (e2.clone(), r2.clone());
            async move {
                e.notify_one();
                r.notified().await;
                "done"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(keel_api::serve_router(
        listener,
        app,
        shutdown.clone(),
        Duration::from_secs(30),
        Default::default(),
    ));
    let req =
        tokio::spawn(async move { reqwest::get(format!("http://{addr}/slow")).await.unwrap().text().await.unwrap() });
    entered.notified().await;
    shutdown.cancel();
    // Once shutdown has begun the listener is closed: a new connection is refused.
    let refused = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(refused.is_ok(), "listener still accepting after shutdown");
    release.notify_one();
    assert_eq!(req.await.unwrap(), "done");
    server.await.unwrap().unwrap();
}

/// A request still running at the drain deadline does not hold the process hostage.
#[tokio::test(start_paused = true)]
async fn drain_deadline_bounds_shutdown() {
    use axum::routing::get;
    let app = axum::Router::new().route("/hang", get(std::future::pending::<&'static str>));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(keel_api::serve_router(
        listener,
        app,
        shutdown.clone(),
        Duration::from_secs(5),
        Default::default(),
    ));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::AsyncWriteExt;
    stream.write_all(b"GET /hang HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    // Let the server read the request before shutting down.
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    shutdown.cancel();
    let started = tokio::time::Instant::now();
    server.await.unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_secs(5), "returned before the deadline with a request in flight");
}

/// `keel-ops migrate` installs exactly the components keel-api uses, in the same order (keel-ops
/// cannot depend on keel-api, so the two lists are held equal here).
#[test]
fn keel_ops_migrates_the_components_keel_api_uses() {
    let names = |s: &[&keel_storage::Schema]| s.iter().map(|s| s.component).collect::<Vec<_>>();
    assert_eq!(names(keel_ops::SCHEMAS), names(keel_api::SCHEMAS));
}

/// `keel-ops user unlock` clears the rows of the policy keel-api throttles sign-ins with.
#[test]
fn keel_ops_unlocks_the_policy_keel_api_throttles_with() {
    assert_eq!(&*keel_api::Policies::defaults().sign_in_failures.name, keel_ops::SIGN_IN_FAILURES_POLICY);
}
