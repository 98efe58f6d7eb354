//! Bench family `api`, the scrape-storm case (issue 15.5): admin request latency with 0 and
//! with `SCRAPERS` concurrent `/metrics` scrapers, against a queue of `STORM_JOBS` pending jobs.
//!
//! Before the shared snapshot, every scrape ran a `GROUP BY` over all jobs: 8 scrapers against
//! 100,000 pending jobs on SQLite took an admin request from a p50 of 3.5 ms to 1.8 s. Now the
//! queue gauges come from one bounded snapshot per `KEEL_METRICS_SNAPSHOT_INTERVAL` (15 s by
//! default) whatever the number of scrapers, so the storm should leave the admin figures
//! where they were.
//!
//! Method: one admin client sends `GET /api/admin/invoices` (API token) back to back for
//! `STORM_ROUND` and records each latency; rounds alternate quiet and stormy, `STORM_ROUNDS`
//! of each, and each side's percentile is taken over all its samples. The scrapers run in this
//! process against keel-api's metrics listener (`serve_metrics`), back to back, keep-alive.

use crate::report::{percentile_ms, Row};
use crate::server::BenchServer;
use keel_storage::Db;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The figure: 100,000 pending jobs.
const STORM_JOBS: usize = 100_000;
const ENQUEUE_BATCH: usize = 5_000;
const SCRAPERS: usize = 8;
const STORM_ROUND: Duration = Duration::from_secs(3);
const STORM_ROUNDS: usize = 3;
const LIST: &str = "/api/admin/invoices";

async fn fill_queue(db: &Db) -> Result<(), String> {
    let store = keel_queue::open(db.clone());
    let mut left = STORM_JOBS;
    while left > 0 {
        let n = left.min(ENQUEUE_BATCH);
        let jobs = (0..n)
            .map(|i| keel_queue::NewJob::new("demo.sleep", &serde_json::json!({ "ms": 1, "i": i })))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("job: {e}"))?;
        store.enqueue_many(jobs).await.map_err(|e| format!("enqueue: {e}"))?;
        left -= n;
    }
    Ok(())
}

/// Latencies of admin requests sent back to back for `dur`; any non-200 fails.
async fn admin_latencies(
    client: &reqwest::Client,
    url: &str,
    headers: &HeaderMap,
    dur: Duration,
) -> Result<Vec<Duration>, String> {
    let deadline = Instant::now() + dur;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        let t = Instant::now();
        let res = client.get(url).headers(headers.clone()).send().await.map_err(|e| format!("admin list: {e}"))?;
        let status = res.status();
        res.bytes().await.map_err(|e| format!("admin list body: {e}"))?;
        if status != StatusCode::OK {
            return Err(format!("admin list answered {status} during the storm case"));
        }
        out.push(t.elapsed());
    }
    Ok(out)
}

/// `SCRAPERS` tasks scraping back to back until `stop`; returns the number of scrapes.
fn storm(
    client: &reqwest::Client,
    url: String,
    stop: CancellationToken,
) -> (JoinSet<Result<(), String>>, Arc<AtomicU64>) {
    let scrapes = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..SCRAPERS {
        let (client, url, stop, scrapes) = (client.clone(), url.clone(), stop.clone(), scrapes.clone());
        tasks.spawn(async move {
            while !stop.is_cancelled() {
                let res = client.get(&url).send().await.map_err(|e| format!("scrape: {e}"))?;
                let ok = res.status() == StatusCode::OK;
                res.bytes().await.map_err(|e| format!("scrape body: {e}"))?;
                if !ok {
                    return Err("a scrape did not answer 200".into());
                }
                scrapes.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
    }
    (tasks, scrapes)
}

pub(crate) async fn scrape_storm(
    name: &'static str,
    db: &Db,
    client: &reqwest::Client,
    full: &BenchServer,
    bearer: &HeaderMap,
) -> Result<Vec<Row>, String> {
    eprintln!("api/{name}: scrape storm, {STORM_JOBS} pending jobs, 0 vs {SCRAPERS} scrapers");
    fill_queue(db).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("bind: {e}"))?;
    let metrics_url = format!("http://{}/metrics", listener.local_addr().map_err(|e| e.to_string())?);
    let stop_metrics = CancellationToken::new();
    let metrics = tokio::spawn(keel_api::serve_metrics(listener, full.state.clone(), stop_metrics.clone()));
    let url = full.url(LIST);
    admin_latencies(client, &url, bearer, Duration::from_millis(500)).await?;
    let (mut quiet, mut stormy) = (Vec::new(), Vec::new());
    let mut total_scrapes = 0;
    for _ in 0..STORM_ROUNDS {
        quiet.extend(admin_latencies(client, &url, bearer, STORM_ROUND).await?);
        let stop = CancellationToken::new();
        let (mut tasks, scrapes) = storm(client, metrics_url.clone(), stop.clone());
        let lat = admin_latencies(client, &url, bearer, STORM_ROUND).await;
        stop.cancel();
        while let Some(r) = tasks.join_next().await {
            r.map_err(|e| format!("scraper task: {e}"))??;
        }
        stormy.extend(lat?);
        total_scrapes += scrapes.load(Ordering::Relaxed);
    }
    let refreshes = full.state.queue_snapshot.refreshes();
    eprintln!(
        "  {total_scrapes} scrapes, {refreshes} snapshot queries; {} quiet and {} stormy admin requests",
        quiet.len(),
        stormy.len()
    );
    stop_metrics.cancel();
    let _ = metrics.await;
    let peer = "same requests, no scrapers";
    let target = "storm ≈ quiet (before: SQLite p50 3.5 ms → 1.8 s)";
    let (q50, q99) = (percentile_ms(&mut quiet, 50.0), percentile_ms(&mut quiet, 99.0));
    let (s50, s99) = (percentile_ms(&mut stormy, 50.0), percentile_ms(&mut stormy, 99.0));
    Ok(vec![
        Row::new(format!("{name}/admin_list_{SCRAPERS}_scrapers_{STORM_JOBS}_pending"), "ms_p50", s50, "lower")
            .vs(peer, q50)
            .target(target),
        Row::new(format!("{name}/admin_list_{SCRAPERS}_scrapers_{STORM_JOBS}_pending"), "ms_p99", s99, "lower")
            .vs(peer, q99)
            .target(target),
    ])
}
