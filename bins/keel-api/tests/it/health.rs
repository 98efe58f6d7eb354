//! `/api/health` end to end: the contract, the internal bearer, and a database that hangs.

use crate::start;
use keel_api::{AppState, Config};
use keel_config::MapSource;
use keel_testkit::{backend_tests, TestDb};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

backend_tests!(head_and_get_agree, unknown_params_ignored_and_other_methods_405);

async fn head_and_get_agree(t: TestDb) {
    let s = start(t).await;
    let c = reqwest::Client::new();
    let get = c.get(s.url("/api/health")).send().await.unwrap();
    let head = c.head(s.url("/api/health")).send().await.unwrap();
    assert_eq!(get.status(), 200);
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["cache-control"], "no-store");
    assert_eq!(head.text().await.unwrap(), "");
    let body: serde_json::Value = get.json().await.unwrap();
    assert_eq!(body["services"], serde_json::json!({"app": "ok", "database": "ok"}));
    assert!(body.get("queue").is_none(), "no snapshot without the internal bearer");
}

async fn unknown_params_ignored_and_other_methods_405(t: TestDb) {
    let s = start(t).await;
    let c = reqwest::Client::new();
    let r = c.get(s.url("/api/health?verbose=1&x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.post(s.url("/api/health")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    // A malformed Authorization header is treated as absent.
    let r = c.get(s.url("/api/health")).header("authorization", "Bearer").send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// A TCP server that accepts connections and never says a word: the worst kind of database.
async fn silent_server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let a = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            held.push(sock);
        }
    });
    (addr, accepted)
}

async fn start_against(url: &str, deadline_ms: &str) -> (std::net::SocketAddr, tokio_util::sync::CancellationToken) {
    let config = Config::load(&MapSource::new([
        ("DATABASE_URL", url),
        ("KEEL_AUTO_MIGRATE", "false"),
        ("HEALTH_TIMEOUT_MS", deadline_ms),
    ]))
    .unwrap();
    let db = keel_storage::open(&config.settings.database, false, &[]).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    tokio::spawn(keel_api::serve(listener, AppState::new(db, config), token.clone()));
    (addr, token)
}

#[tokio::test]
async fn hanging_database_answers_503_within_the_deadline() {
    let (db_addr, _) = silent_server().await;
    let (addr, token) = start_against(&format!("postgres://keel@{db_addr}/keel"), "2000").await;
    let started = Instant::now();
    let r = reqwest::get(format!("http://{addr}/api/health")).await.unwrap();
    let took = started.elapsed();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["services"]["database"], "timeout");
    // Deadline 2 s plus a generous margin for a loaded CI machine; the point is "not hung".
    assert!(took < Duration::from_secs(6), "took {took:?}");
    eprintln!("health with a hanging database answered in {took:?}");
    token.cancel();
}

#[tokio::test]
async fn a_probe_storm_is_a_handful_of_database_checks() {
    let (db_addr, accepted) = silent_server().await;
    let (addr, token) = start_against(&format!("postgres://keel@{db_addr}/keel"), "1000").await;
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let probes = (0..1000).map(|_| {
        let c = client.clone();
        async move { c.get(format!("http://{addr}/api/health")).send().await.map(|r| r.status().as_u16()) }
    });
    let results = futures::future::join_all(probes).await;
    let ok: Vec<u16> = results.into_iter().map(|r| r.unwrap()).collect();
    assert!(ok.iter().all(|s| *s == 503));
    let n = accepted.load(Ordering::SeqCst);
    assert!(n <= 10, "1000 probes opened {n} database connections");
    token.cancel();
}

#[tokio::test]
async fn internal_bearer_is_compared_exactly() {
    let secret = "s".repeat(40);
    let t = TestDb::sqlite(crate::SCHEMAS).await;
    let config = Config::load(&MapSource::new([("INTERNAL_API_SECRET", secret.as_str())])).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    let state = AppState::new(t.db.clone(), config);
    tokio::spawn(keel_api::serve(listener, state.clone(), token.clone()));
    let mut h = axum::http::HeaderMap::new();
    h.insert("authorization", format!("Bearer {secret}").parse().unwrap());
    assert!(keel_api::is_internal_caller(&state, &h));
    h.insert("authorization", format!("Bearer {}x", secret).parse().unwrap());
    assert!(!keel_api::is_internal_caller(&state, &h));
    h.insert("authorization", "Basic abc".parse().unwrap());
    assert!(!keel_api::is_internal_caller(&state, &h));
    let r = reqwest::Client::new().get(format!("http://{addr}/api/health")).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status(), 200);
    token.cancel();
}
