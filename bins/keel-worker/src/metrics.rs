//! The standalone worker's own listener (`KEEL_WORKER_METRICS_BIND`): `/metrics` (queue
//! counters from this worker and state gauges from the database) and the health probes
//! (see [`crate::health`]).

use keel_queue::Worker;
use keel_telemetry::metrics::{FamilyDesc, Sample};
use keel_telemetry::MetricsRegistry;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Registers this worker's counters and a state snapshot refreshed on each scrape.
pub(crate) fn registry(worker: &Worker, snapshot: Arc<Mutex<Option<keel_queue::QueueSnapshot>>>) -> MetricsRegistry {
    let m = MetricsRegistry::new();
    let metrics = worker.metrics();
    type Read = fn(&keel_queue::worker::MetricsSnapshot) -> u64;
    let counters: [(&str, &str, Read); 6] = [
        ("keel_queue_jobs_completed_total", "Jobs this worker completed", |s| s.completed),
        ("keel_queue_jobs_retried_total", "Job attempts that failed and were scheduled again", |s| s.retried),
        ("keel_queue_jobs_failed_total", "Jobs failed permanently", |s| s.failed),
        ("keel_queue_jobs_dead_lettered_total", "Jobs moved to dead_letter", |s| s.dead_lettered),
        ("keel_queue_stuck_processing_total", "Jobs found claimed but never finished (rescued)", |s| {
            s.stuck_processing
        }),
        ("keel_queue_empty_runs_total", "Claim runs that found nothing", |s| s.empty_runs),
    ];
    for (name, help, read) in counters {
        let metrics = metrics.clone();
        if let Ok(desc) = FamilyDesc::counter(name, help, &[]) {
            let _ = m.register(desc, move || vec![Sample::new(Vec::<String>::new(), read(&metrics.snapshot()) as f64)]);
        }
    }
    if let Ok(desc) = FamilyDesc::gauge("keel_queue_jobs", "Jobs per state at the last scrape", &["state"]) {
        let _ = m.register(desc, move || {
            let snap = snapshot.lock().ok().and_then(|s| s.clone());
            let Some(s) = snap else { return Vec::new() };
            let v = serde_json::to_value(s.counts).unwrap_or_default();
            v.as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, n)| n.as_f64().map(|n| Sample::new([k.as_str()], n)))
                .collect()
        });
    }
    m
}

/// The listener's routes: `/metrics`, `/api/health/live`, `/api/health`.
pub fn metrics_router(
    worker: Arc<Worker>,
    store: Arc<dyn keel_queue::Store>,
    db: keel_storage::Db,
    health: keel_health::HealthConfig,
) -> axum::Router {
    use axum::routing::get;
    let snapshot = Arc::new(Mutex::new(None));
    let reg = Arc::new(registry(&worker, snapshot.clone()));
    let probes = crate::health::service(health, db, worker, store.clone());
    axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let (reg, store, snapshot) = (reg.clone(), store.clone(), snapshot.clone());
                async move {
                    // The state gauges come from one snapshot query, bounded so a slow database
                    // never hangs the scrape (the counters still answer).
                    if let Ok(Ok(s)) = tokio::time::timeout(std::time::Duration::from_secs(2), store.snapshot()).await {
                        if let Ok(mut g) = snapshot.lock() {
                            *g = Some(s);
                        }
                    }
                    ([(axum::http::header::CONTENT_TYPE, keel_telemetry::METRICS_CONTENT_TYPE)], reg.render())
                }
            }),
        )
        .route("/api/health/live", get(crate::health::live))
        .route("/api/health", get(crate::health::health).with_state(probes))
}

/// Serves [`metrics_router`] on `listener` until `shutdown`.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
}
