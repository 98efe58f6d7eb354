//! The worker's probes on its metrics listener: the real process answers `/api/health/live`
//! and `/api/health` with keel-api's body shape, reporting pauses as fields; a worker whose
//! claim loops are not running, or whose database is gone, answers 503 `degraded`.

use keel_testkit::{backend_tests, Proc, TestDb};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_keel-worker");

backend_tests!(
    the_running_worker_is_healthy_and_reports_pauses_as_fields,
    a_worker_without_claim_loops_or_database_is_degraded
);

async fn get(url: &str) -> (u16, Option<String>, serde_json::Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let cache = r.headers().get("cache-control").map(|v| v.to_str().unwrap().to_owned());
    (status, cache, r.json().await.unwrap())
}

async fn the_running_worker_is_healthy_and_reports_pauses_as_fields(t: TestDb) {
    let store = keel_queue::open(t.db.clone());
    store.pause_queue("webhooks".into(), Some("test".into())).await.unwrap();
    store.cron_pause("telemetry_retention".into(), None).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("DATABASE_URL", t.url.as_str()),
        ("KEEL_WORKER_METRICS_BIND", "127.0.0.1:0"),
        ("KEEL_MAIL_OUTBOX_DIR", dir.path().to_str().unwrap()),
        ("DISABLE_JOB_RETENTION_CRON", "true"),
    ];
    let mut p = Proc::start(BIN, &[], &env);
    let line =
        tokio::task::block_in_place(|| p.wait_for(Duration::from_secs(30), |v| v["message"] == "metrics listening"));
    let addr = line["addr"].as_str().unwrap().to_owned();

    let (status, cache, body) = get(&format!("http://{addr}/api/health/live")).await;
    assert_eq!((status, cache.as_deref(), body), (200, Some("no-store"), serde_json::json!({"status": "ok"})));

    // Ready once the claim loops run (they start just after the listener binds).
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (status, cache, body) = get(&format!("http://{addr}/api/health")).await;
        assert_eq!(cache.as_deref(), Some("no-store"));
        if status == 200 {
            break body;
        }
        assert_eq!((status, &body["status"]), (503, &serde_json::json!("degraded")), "{body}");
        assert!(Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(body["status"], "ok", "{body}");
    assert!(body["checked_at"].is_string(), "{body}");
    assert_eq!(body["services"], serde_json::json!({"app": "ok", "database": "ok", "claim_loops": "ok"}), "{body}");
    let w = &body["worker"];
    assert_eq!(w["claim_loops"]["running"], w["claim_loops"]["expected"], "{body}");
    assert_eq!(w["paused_queues"], serde_json::json!(["webhooks"]), "a paused queue is a field, not unhealthy");
    assert_eq!(w["paused_tasks"], serde_json::json!(["telemetry_retention"]), "{body}");
    assert_eq!(w["switches"], serde_json::json!(["DISABLE_JOB_RETENTION_CRON"]), "{body}");
    let head = reqwest::Client::new().head(format!("http://{addr}/api/health")).send().await.unwrap();
    assert_eq!(head.status(), 200);

    p.signal("TERM");
    let status = tokio::task::block_in_place(|| p.wait_exit(Duration::from_secs(20)));
    assert!(status.success(), "{status:?}: {}", p.seen.join("\n"));
}

async fn a_worker_without_claim_loops_or_database_is_degraded(t: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let src = keel_config::MapSource::new([("KEEL_MAIL_OUTBOX_DIR", dir.path().to_str().unwrap())]);
    let config = keel_worker::WorkerConfig::load(&src).unwrap();
    let health = config.health;
    let ctx = keel_worker::WorkerContext { db: t.db.clone(), config, switches: keel_queue::SwitchBoard::default() };
    // Built, never run: no claim loop is alive.
    let worker = Arc::new(keel_worker::build(&ctx).unwrap());
    let store = keel_queue::open(t.db.clone());
    let metrics = keel_worker::WorkerMetrics::new(&t.db, store.clone(), Duration::from_secs(15)).unwrap();
    let app = keel_worker::metrics_router(&metrics, worker, store, t.db.clone(), health);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(keel_worker::serve_metrics(listener, app, stop.clone()));

    let (status, _, body) = get(&format!("http://{addr}/api/health")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["services"]["claim_loops"], "error", "{body}");
    assert_eq!(body["services"]["database"], "ok", "{body}");
    assert_eq!(body["worker"]["claim_loops"], serde_json::json!({"running": 0, "expected": 2}), "{body}");

    t.db.close().await;
    let (status, _, body) = get(&format!("http://{addr}/api/health")).await;
    assert_eq!(status, 503, "{body}");
    assert_ne!(body["services"]["database"], "ok", "{body}");
    // Liveness touches nothing.
    assert_eq!(get(&format!("http://{addr}/api/health/live")).await.0, 200);
    stop.cancel();
    server.await.unwrap().unwrap();
}
