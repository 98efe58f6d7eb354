//! Telemetry routes: ingest validation and switches, the sampling config, the metrics scrape.

use crate::{start, start_with};
use keel_storage::{sqlx, Db};
use keel_testkit::{backend_tests, TestDb};

backend_tests!(
    ingest_accepts_valid_batches_and_names_bad_fields,
    ingest_switch_and_config,
    metrics_expose_http_histogram_and_limiters
);

fn event(route: &str, ms: f64) -> serde_json::Value {
    serde_json::json!({"route": route, "kind": "navigation", "duration_ms": ms, "occurred_at": chrono::Utc::now().to_rfc3339(), "sample_rate": 0.5})
}

async fn stored(db: &Db) -> i64 {
    let q = "SELECT count(*) FROM route_performance_events WHERE kind = 'navigation'";
    match db {
        Db::Postgres(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
        Db::Sqlite(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
    }
}

async fn ingest_accepts_valid_batches_and_names_bad_fields(t: TestDb) {
    let db = t.db.clone();
    let s = start(t).await;
    let c = reqwest::Client::new();
    let url = s.url("/api/telemetry/route-timing");
    let r = c
        .post(&url)
        .json(&serde_json::json!({"events": [event("/admin/invoices", 120.0), event("/admin/jobs/:id", 80.0)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let bad = serde_json::json!({"events": [event("/ok", 1.0), event("/admin/jobs/12345", 5.0)]});
    let r = c.post(&url).json(&bad).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "events[1].route", "{body}");
    let r =
        c.post(&url).json(&serde_json::json!({"events": [event("/x", 11.0 * 60.0 * 1000.0)]})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let many: Vec<_> = (0..101).map(|_| event("/x", 1.0)).collect();
    let r = c.post(&url).json(&serde_json::json!({"events": many})).send().await.unwrap();
    assert_eq!(r.status(), 413);
    let r = c.post(&url).header("content-type", "application/json").body("{oops").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // Stop the server: the writer flushes what it holds; only the valid batch was stored.
    s.shutdown.cancel();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let n = stored(&db).await;
        if n >= 2 || std::time::Instant::now() > deadline {
            assert_eq!(n, 2, "exactly the two accepted browser events");
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn ingest_switch_and_config(t: TestDb) {
    let db = t.db.clone();
    let s = start_with(t, &[("ROUTE_TELEMETRY_INGEST_DISABLED", "true"), ("ROUTE_TELEMETRY_SAMPLE_RATE", "0.1")]).await;
    let c = reqwest::Client::new();
    let r = c
        .post(s.url("/api/telemetry/route-timing"))
        .json(&serde_json::json!({"events": [event("/a", 1.0)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let cfg: serde_json::Value = c.get(s.url("/api/telemetry/config")).send().await.unwrap().json().await.unwrap();
    assert_eq!(cfg, serde_json::json!({"enabled": true, "sample_rate": 0.1, "admin_sample_rate": 0.2}));
    assert_eq!(stored(&db).await, 0);
}

async fn metrics_expose_http_histogram_and_limiters(t: TestDb) {
    let s = start(t).await;
    let c = reqwest::Client::new();
    c.get(s.url("/api/health/live")).send().await.unwrap();
    c.get(s.url("/api/admin/invoices")).send().await.unwrap();
    let r = c.get(s.url("/metrics")).send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.unwrap();
    assert!(text.contains("# TYPE http_server_request_duration_seconds histogram"), "{text}");
    assert!(text.contains("route=\"/api/health/live\""), "route template label: {text}");
    assert!(!text.contains("route=\"/api/admin/invoices/"), "no raw paths");
    assert!(text.contains("keel_ratelimit_allowed_total{policy=\"admin_api\"} 1"), "{text}");
    assert!(text.contains("keel_cache_hits_total{bucket=\"dashboard\"}"), "{text}");
    assert!(text.contains("keel_queue_jobs{state=\"pending\"} 0"), "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "unparseable sample line: {line}");
    }
}
