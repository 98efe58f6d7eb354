//! The standalone worker's own listener (`KEEL_WORKER_METRICS_BIND`): `/metrics` (this
//! worker's counters and job families, the pool, and the queue gauges from the shared
//! snapshot) and the health probes (see `health.rs`). keel-api reuses the job families
//! and the queue gauges for its embedded worker.

mod jobs;
mod pace;
mod queue;

pub use jobs::{JobMetrics, JOB_DURATION_BUCKETS, JOB_START_LAG_BUCKETS, MAX_JOB_SERIES};
pub use pace::{ScrapePacer, MIN_SCRAPE_SPACING};
pub use queue::{queue_snapshot, refresh, register_queue_gauges, QUEUE_SNAPSHOT_LIMIT};

use axum::http::{header, HeaderMap};
use keel_queue::{SharedSnapshot, Worker};
use keel_telemetry::metrics::{Exposition, FamilyDesc, MetricsError, Sample};
use keel_telemetry::MetricsRegistry;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Everything the worker's `/metrics` writes, registered once at startup.
pub struct WorkerMetrics {
    /// The registry the listener encodes.
    pub registry: Arc<MetricsRegistry>,
    /// The per-job families: hand them to [`Worker::with_observer`] before the worker runs.
    pub jobs: Arc<JobMetrics>,
    /// The queue snapshot shared by every scrape.
    pub snapshot: SharedSnapshot,
}

impl WorkerMetrics {
    /// Registers the job families, the pool gauges and the queue gauges (over `store`,
    /// refreshed at most once per `snapshot_interval`).
    pub fn new(
        db: &keel_storage::Db,
        store: Arc<dyn keel_queue::Store>,
        snapshot_interval: std::time::Duration,
    ) -> Result<WorkerMetrics, MetricsError> {
        let registry = Arc::new(MetricsRegistry::new());
        let jobs = JobMetrics::register(&registry)?;
        let snapshot = queue_snapshot(store, snapshot_interval);
        register_queue_gauges(&registry, &snapshot)?;
        keel_telemetry::metrics::register_pool_metrics(&registry, db)?;
        Ok(WorkerMetrics { registry, jobs, snapshot })
    }

    /// Adds `worker`'s own counters (`keel_queue_*_total`).
    pub fn register_worker(&self, worker: &Worker) -> Result<(), MetricsError> {
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
            self.registry.register(FamilyDesc::counter(name, help, &[])?, move || {
                vec![Sample::new(Vec::<String>::new(), read(&metrics.snapshot()) as f64)]
            })?;
        }
        Ok(())
    }
}

/// `GET /metrics` for `registry`: waits for its turn on the listener's `pacer`, refreshes the
/// shared queue snapshot if this interval has none, then writes the text format, or
/// OpenMetrics when `Accept` asks for it.
pub async fn scrape(
    registry: &MetricsRegistry,
    snapshot: &SharedSnapshot,
    pacer: &ScrapePacer,
    headers: &HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let format = Exposition::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let body = pacer
        .run(async {
            refresh(snapshot).await;
            registry.encode(format)
        })
        .await;
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

/// The listener's routes: `/metrics`, `/api/health/live`, `/api/health`.
pub fn metrics_router(
    metrics: &WorkerMetrics,
    worker: Arc<Worker>,
    store: Arc<dyn keel_queue::Store>,
    db: keel_storage::Db,
    health: keel_health::HealthConfig,
) -> axum::Router {
    use axum::routing::get;
    let (reg, snapshot) = (metrics.registry.clone(), metrics.snapshot.clone());
    // One pacer per listener: this router is built once for it.
    let pacer = Arc::new(ScrapePacer::default());
    let probes = crate::health::service(health, db, worker, store);
    axum::Router::new()
        .route(
            "/metrics",
            get(move |headers: HeaderMap| {
                let (reg, snapshot, pacer) = (reg.clone(), snapshot.clone(), pacer.clone());
                async move { scrape(&reg, &snapshot, &pacer, &headers).await }
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
