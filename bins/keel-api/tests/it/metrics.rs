//! keel-api's `/metrics`: the real binary's exposition passes `promtool check metrics` and, with
//! the embedded worker, carries the job families after real jobs ran; scrapes and health probes
//! share one queue snapshot per interval.

use crate::start_state;
use keel_queue::NewJob;
use keel_testkit::{backend_tests, Proc, TestDb};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_keel-api");

backend_tests!(real_binary_exposition_passes_promtool_with_job_families, scrapes_and_health_share_one_snapshot);

async fn real_binary_exposition_passes_promtool_with_job_families(t: TestDb) {
    let store = keel_queue::open(t.db.clone());
    for _ in 0..2 {
        store.enqueue(NewJob::new("demo.sleep", &serde_json::json!({"ms": 1})).unwrap()).await.unwrap();
    }
    store.enqueue(NewJob::new("k.unknown", &serde_json::json!({})).unwrap()).await.unwrap();
    let outbox = tempfile::tempdir().unwrap();
    let env = [
        ("KEEL_BIND", "127.0.0.1:0"),
        ("KEEL_METRICS_BIND", "127.0.0.1:0"),
        ("DATABASE_URL", t.url.as_str()),
        ("KEEL_EMBEDDED_WORKER", "true"),
        ("KEEL_MAIL_OUTBOX_DIR", outbox.path().to_str().unwrap()),
    ];
    let mut p = Proc::start(BIN, &[], &env);
    let addr = tokio::task::block_in_place(|| p.wait_listening());
    let is_metrics = |v: &serde_json::Value| v["message"] == "metrics listening";
    let seen = p.seen.iter().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).find(is_metrics);
    let line = seen.unwrap_or_else(|| tokio::task::block_in_place(|| p.wait_for(Duration::from_secs(30), is_metrics)));
    let metrics_addr = line["addr"].as_str().unwrap().to_owned();
    // A request on a route whose template has braces (a label value readers must not split).
    let c = reqwest::Client::new();
    c.get(format!("http://{addr}/api/admin/invoices/00000000-0000-0000-0000-000000000000")).send().await.unwrap();
    c.get(format!("http://{addr}/api/health")).send().await.unwrap();
    // The embedded worker runs the jobs; wait on the database, not on the (shared) snapshot.
    let wait = async {
        loop {
            let s = store.snapshot().await.unwrap();
            if s.counts.completed == 2 && s.counts.dead_letter == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait).await.expect("the embedded worker ran the jobs within 30 s");

    let body = c.get(format!("http://{metrics_addr}/metrics")).send().await.unwrap().text().await.unwrap();
    keel_testkit::promtool_check_metrics("keel-api's /metrics", &body);
    for want in [
        "route=\"/api/admin/invoices/{id}\"",
        "keel_jobs_finished_total{queue=\"default\",kind=\"demo.sleep\",outcome=\"completed\"} 2\n",
        "keel_jobs_finished_total{queue=\"default\",kind=\"k.unknown\",outcome=\"dead_lettered\"} 1\n",
        "keel_job_duration_seconds_count{queue=\"default\",kind=\"demo.sleep\",outcome=\"completed\"} 2\n",
        "keel_job_duration_seconds_bucket{queue=\"default\",kind=\"k.unknown\",outcome=\"dead_lettered\",le=\"+Inf\"} 1\n",
        "keel_job_start_lag_seconds_count{queue=\"default\"} 3\n",
        "# TYPE keel_job_duration_seconds histogram\n",
        "# TYPE keel_job_start_lag_seconds histogram\n",
        "# TYPE keel_jobs_finished_total counter\n",
        "keel_db_pool_connections{state=\"idle\"}",
        "keel_db_pool_connections{state=\"in_use\"}",
        "keel_queue_jobs{state=\"completed\"} 2\n",
        "keel_queue_jobs{state=\"dead_letter\"} 1\n",
        "keel_queue_oldest_pending_age_seconds 0\n",
    ] {
        assert!(body.contains(want), "{want} in:\n{body}");
    }
    // keel-ops smoke reads the same page (route templates with braces included) and passes.
    assert_eq!(crate::smoke::smoke(&format!("http://{addr}"), &format!("http://{metrics_addr}")).await, 0);
    p.signal("TERM");
    let status = tokio::task::block_in_place(|| p.wait_exit(Duration::from_secs(20)));
    assert!(status.success(), "exit {status:?}; logs:\n{}", p.seen.join("\n"));
}

async fn scrapes_and_health_share_one_snapshot(t: TestDb) {
    let secret = "s".repeat(40);
    // An hour-long interval: every read of this test falls in the first one.
    let env = [("INTERNAL_API_SECRET", secret.as_str()), ("KEEL_METRICS_SNAPSHOT_INTERVAL", "1h")];
    let mut snapshot = None;
    let s = start_state(t, &env, |st| snapshot = Some(st.queue_snapshot.clone())).await;
    let snapshot = snapshot.unwrap();
    let c = reqwest::Client::new();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..12 {
        let c = c.clone();
        let (metrics, health, secret) = (s.metrics_url("/metrics"), s.url("/api/health"), secret.clone());
        calls.spawn(async move {
            if i % 3 == 0 {
                let v: serde_json::Value =
                    c.get(health).bearer_auth(secret).send().await.unwrap().json().await.unwrap();
                assert_eq!(v["queue"]["pending"], 0, "{v}");
            } else {
                let text = c.get(metrics).send().await.unwrap().text().await.unwrap();
                assert!(text.contains("keel_queue_jobs{state=\"pending\"} 0\n"), "{text}");
            }
        });
    }
    calls.join_all().await;
    assert_eq!(snapshot.refreshes(), 1, "8 scrapes and 4 health probes, one snapshot query");
}
