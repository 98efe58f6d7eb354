//! Binding, serving and draining: `run` for the binary, `serve` for tests.

use crate::{AppState, Config};
use anyhow::Context;
use std::net::SocketAddr;
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
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let s = &config.settings;
    tracing::info!(database = %s.database, auto_migrate = s.auto_migrate, "opening database");
    // A statement outliving its request's budget is stopped by the server too, instead of
    // waiting on a lock with a pooled connection after the client already got its 503.
    let limits = keel_storage::SessionLimits { statement_timeout: Some(config.request_timeout + STATEMENT_MARGIN) };
    let db = keel_storage::open_limited(&s.database, s.auto_migrate, limits).await.map_err(|e| anyhow::anyhow!(e))?;
    let listener = TcpListener::bind(s.bind)
        .await
        .with_context(|| format!("cannot bind KEEL_BIND={}: is another process using the port?", s.bind))?;
    let worker = if s.embedded_worker {
        let ctx = keel_worker::WorkerContext {
            db: db.clone(),
            config: config.worker.clone(),
            switches: config.switches.clone(),
        };
        keel_worker::shutdown::reload_on_hup(config.switches.clone());
        let token = shutdown.child_token();
        Some(tokio::spawn(async move { keel_worker::run(ctx, token).await }))
    } else {
        None
    };
    let state = AppState::new(db.clone(), config);
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
    serve(listener, state, shutdown).await?;
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

/// Serves the router on `listener` until `shutdown` is cancelled, then stops accepting and
/// lets in-flight requests finish for at most [`DRAIN_DEADLINE`].
pub async fn serve(listener: TcpListener, state: AppState, shutdown: CancellationToken) -> anyhow::Result<()> {
    // The route-timing writer runs beside the server and is flushed after the last request.
    let writer = state.writer.lock().ok().and_then(|mut w| w.take());
    let writer_stop = CancellationToken::new();
    let writer_task = writer.map(|w| tokio::spawn(w.run(writer_stop.clone())));
    let res = serve_router(listener, crate::router(state), shutdown, DRAIN_DEADLINE).await;
    writer_stop.cancel();
    if let Some(t) = writer_task {
        match t.await {
            Ok(stats) => tracing::info!(?stats, "route telemetry flushed"),
            Err(e) => tracing::warn!(error = %e, "route telemetry writer failed"),
        }
    }
    res
}

/// [`serve`] for any router and deadline; tests use it to prove the drain.
pub async fn serve_router(
    listener: TcpListener,
    app: axum::Router,
    shutdown: CancellationToken,
    drain: Duration,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    let server = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let mut task = tokio::spawn(async move { server.await });
    tokio::select! {
        res = &mut task => return res.context("server task failed")?.context("server failed"),
        _ = shutdown.cancelled() => {}
    }
    tracing::info!(deadline_s = drain.as_secs(), "draining in-flight requests");
    match tokio::time::timeout(drain, &mut task).await {
        Ok(res) => res.context("server task failed")?.context("server failed"),
        Err(_) => {
            task.abort();
            tracing::warn!("drain deadline passed; remaining connections were closed");
            Ok(())
        }
    }
}
