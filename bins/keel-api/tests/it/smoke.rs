//! `keel-ops smoke` against the real server: it passes on a healthy keel-api and fails, naming
//! the check, against one whose database hangs.

use crate::start;
use clap::Parser;
use keel_testkit::TestDb;

pub(crate) async fn smoke(base: &str, metrics: &str) -> u8 {
    let cli = keel_ops::Cli::parse_from(["keel-ops", "smoke", "--base-url", base, "--metrics-url", metrics, "--json"]);
    keel_ops::run_code(cli, &keel_config::MapSource::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_passes_against_a_fresh_server() {
    let s = start(TestDb::sqlite(crate::SCHEMAS).await).await;
    assert_eq!(smoke(&format!("http://{}", s.addr), &format!("http://{}", s.metrics_addr)).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_fails_against_a_broken_dependency() {
    // A database that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let db_addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let url = format!("postgres://keel@{db_addr}/keel");
    let config = keel_api::Config::load(&keel_config::MapSource::new([
        ("DATABASE_URL", url.as_str()),
        ("KEEL_AUTO_MIGRATE", "false"),
        ("HEALTH_TIMEOUT_MS", "500"),
        ("KEEL_EMBEDDED_WORKER", "false"),
    ]))
    .unwrap();
    let db = keel_storage::open(&config.settings.database, false, &[]).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics.local_addr().unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    let state = keel_api::AppState::new(db, config);
    tokio::spawn(keel_api::serve_metrics(metrics, state.clone(), token.clone()));
    tokio::spawn(keel_api::serve(listener, state, token.clone()));
    assert_eq!(smoke(&format!("http://{addr}"), &format!("http://{metrics_addr}")).await, 1);
    token.cancel();
}
