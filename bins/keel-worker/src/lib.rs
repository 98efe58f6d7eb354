//! keel-worker as a library: `run` processes background work until cancelled. `keel-api`
//! calls the same function for its embedded worker.

pub mod shutdown;

use keel_config::Settings;
use keel_storage::Db;
use tokio_util::sync::CancellationToken;

/// What the worker needs from its host process.
#[derive(Clone)]
pub struct WorkerContext {
    pub db: Db,
    pub settings: Settings,
}

/// Runs until `shutdown` is cancelled.
pub async fn run(ctx: WorkerContext, shutdown: CancellationToken) -> anyhow::Result<()> {
    tracing::info!(backend = ctx.db.backend().as_str(), "worker started");
    shutdown.cancelled().await;
    tracing::info!("worker stopped");
    Ok(())
}
