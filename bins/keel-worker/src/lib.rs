//! keel-worker as a library: `run` processes background jobs and scheduled work until
//! cancelled. keel-api calls the same function for its embedded worker, so one node on SQLite
//! runs everything from the README's single command.

mod config;
mod health;
mod kinds;
pub mod metrics;
mod schema;
pub mod shutdown;
mod switches;

pub use config::WorkerConfig;
pub use kinds::{
    builtin_options, builtin_registry, webhook_signature, FileOutbox, MailError, MailFuture, Mailer, Message,
    PasswordResetRequest, Sender, SmtpMailer, DELIVERY_ID_HEADER, SIGNATURE_HEADER,
};
pub use metrics::{metrics_router, serve_metrics, JobMetrics, WorkerMetrics};
pub use schema::{migrate, CAMPAIGNS_SCHEMA, SCHEMAS};
pub use switches::{watch_switches, SWITCHES_FILE_POLL};

use keel_queue::{SwitchBoard, Worker};
use keel_storage::Db;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What the worker needs from its host process.
#[derive(Clone)]
pub struct WorkerContext {
    pub db: Db,
    pub config: WorkerConfig,
    /// Incident switches; the host keeps them current with [`watch_switches`].
    pub switches: SwitchBoard,
}

/// Builds the queue worker (built-in job kinds, scheduled tasks) for `ctx`.
pub fn build(ctx: &WorkerContext) -> anyhow::Result<Worker> {
    let store = open_store(ctx);
    let registry = builtin_registry(&ctx.config, Some(ctx.db.clone()))?;
    let retention_days = ctx.config.telemetry_retention_days;
    let db = ctx.db.clone();
    let telemetry_prune = keel_queue::cron::FnTask::new(
        "telemetry_retention",
        keel_queue::cron::Schedule::every(std::time::Duration::from_secs(3600)),
        move |_ctx| {
            let db = db.clone();
            async move {
                keel_telemetry::prune_events(&db, retention_days, chrono::Utc::now())
                    .await
                    .map_err(|e| keel_queue::cron::TaskError(e.to_string()))
            }
        },
    );
    Ok(Worker::new(store, registry, ctx.config.worker.clone())
        .with_switches(ctx.switches.clone())
        .with_task(telemetry_prune))
}

/// The job store for `ctx`, sealing and opening with the configured keyring (see
/// [`WorkerConfig::resolve_keyring`]; without one, sealed jobs are refused and cannot run).
pub fn open_store(ctx: &WorkerContext) -> Arc<dyn keel_queue::Store> {
    let opts = keel_queue::StoreOptions { keyring: ctx.config.keyring.clone(), ..Default::default() };
    keel_queue::open_with(ctx.db.clone(), Arc::new(keel_queue::SystemClock), opts)
}

/// Runs until `shutdown` is cancelled, then drains in-flight jobs (see keel-queue).
pub async fn run(ctx: WorkerContext, shutdown: CancellationToken) -> anyhow::Result<()> {
    let worker = Arc::new(build(&ctx)?);
    run_worker(&ctx, worker, shutdown).await
}

/// Runs an already built worker (the standalone binary shares it with its metrics listener).
pub async fn run_worker(ctx: &WorkerContext, worker: Arc<Worker>, shutdown: CancellationToken) -> anyhow::Result<()> {
    tracing::info!(backend = ctx.db.backend().as_str(), worker_id = %ctx.config.worker.worker_id, "worker started");
    let report = worker.run(shutdown).await.map_err(|e| anyhow::anyhow!(e))?;
    tracing::info!(completed = report.metrics.completed, released = report.released_at_shutdown, "worker stopped");
    Ok(())
}
