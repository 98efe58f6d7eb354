//! The real binary: starts on SQLite with nothing but a path, serves both listeners, processes a
//! note, and stops cleanly on SIGTERM.

use keel_testkit::Proc;
use serde_json::{json, Value};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_host-axum");

#[test]
fn serves_on_sqlite_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/host-axum.db");
    let url = format!("sqlite://{}", path.display());
    let mut p = Proc::start(
        BIN,
        &[],
        &[
            ("HOST_AXUM_BIND", "127.0.0.1:0"),
            ("HOST_AXUM_METRICS_BIND", "127.0.0.1:0"),
            ("HOST_AXUM_LOG_FORMAT", "json"),
            ("DATABASE_URL", &url),
        ],
    );
    let addr = p.wait_listening();
    let is_metrics = |v: &Value| v["message"] == "metrics listening";
    let line = p.seen.iter().filter_map(|l| serde_json::from_str::<Value>(l).ok()).find(is_metrics);
    let metrics =
        line.unwrap_or_else(|| p.wait_for(Duration::from_secs(30), is_metrics))["addr"].as_str().unwrap().to_owned();
    assert_ne!(metrics, addr.to_string());

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        assert_eq!(http.get(format!("http://{addr}/ready")).send().await.unwrap().status(), 200);
        let res = http.post(format!("http://{addr}/notes")).json(&json!({"body": "from a real process"})).send();
        assert_eq!(res.await.unwrap().status(), 201);
        crate::support::eventually("the in-process worker processes the note", || async {
            let list: Value = http.get(format!("http://{addr}/notes")).send().await.unwrap().json().await.unwrap();
            (list[0]["processed"] == true).then_some(())
        })
        .await;
        let text = http.get(format!("http://{metrics}/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(text.contains("http_server_request_duration_seconds"), "{text}");
    });
    assert!(path.exists(), "the database file is created on first start");

    p.signal("TERM");
    let status = p.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "exit {status:?}; logs:\n{}", p.seen.join("\n"));
    assert!(p.seen.iter().any(|l| l.contains("shutdown complete")), "{}", p.seen.join("\n"));
}

#[test]
fn bad_settings_exit_2_naming_every_variable() {
    let out = std::process::Command::new(BIN)
        .env("HOST_AXUM_BIND", "not-an-address")
        .env("HOST_AXUM_RATE_LIMIT", "lots")
        .env("DATABASE_URL", "mysql://root:hunter2@db/x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for var in ["HOST_AXUM_BIND", "HOST_AXUM_RATE_LIMIT", "DATABASE_URL"] {
        assert!(err.contains(var), "{var} missing from:\n{err}");
    }
    assert!(!err.contains("hunter2"), "the URL's password leaked:\n{err}");
}
