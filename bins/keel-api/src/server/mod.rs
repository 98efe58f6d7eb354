//! Binding, serving and draining: `run` for the binary, `serve` and `serve_metrics` for tests.

mod conn;
mod listen;

use crate::config::HttpLimits;
use crate::{AppState, Config};
use anyhow::Context;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long in-flight requests may take to finish after shutdown starts. Orchestrators send
/// SIGKILL after 30 s by default; 10 s leaves room for the worker's own drain.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// How much longer than the request budget a statement may run on Postgres: the budget
/// answers first (a clear 503), then the server cancels whatever is still running.
pub(crate) const STATEMENT_MARGIN: Duration = Duration::from_secs(1);

/// The whole process: open the database (migrating if configured), start the embedded worker
/// if configured, bind and serve until `shutdown`.
pub async fn run(mut config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let s = &config.settings;
    tracing::info!(database = %s.database, auto_migrate = s.auto_migrate, "opening database");
    // A statement outliving its request's budget is stopped by the server too, instead of
    // waiting on a lock with a pooled connection after the client already got its 503.
    let limits = keel_storage::SessionLimits {
        statement_timeout: Some(config.request_timeout + STATEMENT_MARGIN),
        pool: s.pool,
    };
    let db = keel_storage::open_limited(&s.database, s.auto_migrate, crate::SCHEMAS, limits)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    // Before anything is served or run (and once the database is there, so a process that
    // cannot start leaves no key file behind): sealed jobs need the key (development: the file).
    config.worker.resolve_keyring()?;
    let s = &config.settings;
    let listener = TcpListener::bind(s.bind)
        .await
        .with_context(|| format!("cannot bind KEEL_BIND={}: is another process using the port?", s.bind))?;
    // The switches steer the embedded worker and this process's inline dispatch alike.
    keel_worker::watch_switches(config.switches.clone());
    let metrics_listener = TcpListener::bind(config.metrics_bind).await.with_context(|| {
        format!("cannot bind KEEL_METRICS_BIND={}: is another process using the port?", config.metrics_bind)
    })?;
    let ctx = s.embedded_worker.then(|| keel_worker::WorkerContext {
        db: db.clone(),
        config: config.worker.clone(),
        switches: config.switches.clone(),
    });
    let state = AppState::new(db.clone(), config);
    let worker = match ctx {
        Some(ctx) => {
            // Its jobs are counted in this process's metrics (`keel_job_*`).
            let w = keel_worker::build(&ctx)?.with_observer(state.job_metrics.clone());
            let token = shutdown.child_token();
            Some(tokio::spawn(async move { keel_worker::run_worker(&ctx, std::sync::Arc::new(w), token).await }))
        }
        None => None,
    };
    // Cache invalidations reach the other api processes over LISTEN/NOTIFY on Postgres; on
    // SQLite there is one node and invalidation is local.
    let _bus = match db.pg().map(|pool| keel_orgcache::PgBus::connect(&state.cache, pool)) {
        Some(Ok(task)) => Some(task),
        None => None,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "cache invalidation bus not started; entries expire by TTL only");
            None
        }
    };
    let metrics = tokio::spawn(serve_metrics(metrics_listener, state.clone(), shutdown.clone()));
    let served = serve(listener, state, shutdown.clone()).await;
    // A public listener that failed must not leave the metrics one running on its own.
    shutdown.cancel();
    match metrics.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "metrics listener failed"),
        Err(e) => tracing::error!(error = %e, "metrics listener panicked"),
    }
    served?;
    if let Some(w) = worker {
        match w.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "embedded worker stopped with an error"),
            Err(e) => tracing::error!(error = %e, "embedded worker panicked"),
        }
    }
    db.close().await;
    tracing::info!("shutdown complete");
    Ok(())
}

/// Serves the public router on `listener` until `shutdown` is cancelled, then stops accepting
/// and lets in-flight requests finish for at most [`DRAIN_DEADLINE`]. Connections follow
/// `KEEL_HTTP_*` from the state's configuration.
pub async fn serve(listener: TcpListener, state: AppState, shutdown: CancellationToken) -> anyhow::Result<()> {
    // The route-timing writer runs beside the server and is flushed after the last request.
    let writer = state.writer.lock().ok().and_then(|mut w| w.take());
    let writer_stop = CancellationToken::new();
    let writer_task = writer.map(|w| tokio::spawn(w.run(writer_stop.clone())));
    let limits = state.config.http;
    let res = serve_router(listener, crate::router(state), shutdown, DRAIN_DEADLINE, limits).await;
    writer_stop.cancel();
    if let Some(t) = writer_task {
        match t.await {
            Ok(stats) => tracing::info!(?stats, "route telemetry flushed"),
            Err(e) => tracing::warn!(error = %e, "route telemetry writer failed"),
        }
    }
    res
}

/// Serves `/metrics` (and nothing else) on `listener`, the `KEEL_METRICS_BIND` listener, with
/// the same connection limits as the public one, until `shutdown`.
pub async fn serve_metrics(listener: TcpListener, state: AppState, shutdown: CancellationToken) -> anyhow::Result<()> {
    let limits = state.config.http;
    let app = crate::routes::metrics_router(state);
    listen::accept_until(listen::Listener::Metrics, listener, app, shutdown, DRAIN_DEADLINE, limits).await
}

/// [`serve`] for any router, deadline and connection limits; tests use it to prove the drain
/// and the timeouts.
pub async fn serve_router(
    listener: TcpListener,
    app: axum::Router,
    shutdown: CancellationToken,
    drain: Duration,
    limits: HttpLimits,
) -> anyhow::Result<()> {
    listen::accept_until(listen::Listener::Public, listener, app, shutdown, drain, limits).await
}
