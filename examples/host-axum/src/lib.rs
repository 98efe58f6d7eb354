//! host-axum: a small notes service that adopts five Keel crates beside its own sqlx schema.
//!
//! 1. keel-ratelimit's tower layer on `/notes` ([`routes::router`]);
//! 2. keel-health's readiness handler with a database check on `/ready` ([`AppState::new`]);
//! 3. keel-orgcache for the note list, invalidated by tag on every write ([`cache`]);
//! 4. keel-queue: a `note.process` job enqueued in the note's own transaction ([`notes`]) and a
//!    worker in this process running it ([`jobs`]);
//! 5. keel-telemetry's timing layer, with `/metrics` on a listener of its own ([`serve`]).
//!
//! The README walks through each step.

pub mod cache;
pub mod error;
pub mod jobs;
pub mod notes;
pub mod routes;
mod settings;
mod state;

pub use keel_queue::CancellationToken;
pub use routes::{metrics_router, router};
pub use settings::{Settings, DEFAULT_BIND, DEFAULT_METRICS_BIND, DEFAULT_RATE_LIMIT, DEFAULT_SQLITE_PATH};
pub use state::AppState;

use anyhow::Context;
use keel_storage::{ConnectMode, Db};
use std::future::IntoFuture;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Installs the host's own migrations (recorded in its `_sqlx_migrations`, as any sqlx service
/// does), then the Keel components it uses (each recorded in its own `keel_<component>_migrations`
/// table, so the two never collide). Safe to run on every start.
pub async fn migrate(db: &Db) -> anyhow::Result<()> {
    match db {
        Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await,
        Db::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await,
    }
    .context("the host's own migrations (host_notes)")?;
    keel_queue::migrate(db).await.context("keel-queue's migrations")?;
    keel_telemetry::migrate(db).await.context("keel-telemetry's migrations")?;
    Ok(())
}

/// Serves `state` until `shutdown`: the public router on `listener`, `/metrics` on
/// `metrics_listener` (never on the public port), and beside them the queue's worker and the
/// route-timing writer. On shutdown both listeners stop accepting and finish their requests, the
/// worker lets running jobs finish, and the writer flushes what is buffered.
pub async fn serve(
    listener: TcpListener,
    metrics_listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Step 4: the worker runs in this process, on the same store the notes enqueue into.
    let worker = jobs::worker(state.notes.clone(), state.cache.clone())?;
    let stop_worker = CancellationToken::new();
    let working = tokio::spawn({
        let stop = stop_worker.clone();
        async move { worker.run(stop).await }
    });
    // Step 5: the timing writer, and the metrics listener.
    let stop_writer = CancellationToken::new();
    let writing = state.take_writer().map(|w| tokio::spawn(w.run(stop_writer.clone())));
    tracing::info!(addr = %metrics_listener.local_addr()?, "metrics listening");
    let metrics = tokio::spawn(
        axum::serve(metrics_listener, metrics_router(state.clone()))
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .into_future(),
    );
    tracing::info!(addr = %listener.local_addr()?, "listening");
    // `ConnectInfo` gives the rate limiter each request's peer address.
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned()).await;
    // A public listener that failed must not leave the rest running.
    shutdown.cancel();
    let metrics = metrics.await;
    stop_worker.cancel();
    match working.await {
        Ok(Ok(report)) => tracing::info!(completed = report.metrics.completed, "worker stopped"),
        Ok(Err(e)) => tracing::error!(error = %e, "worker could not run"),
        Err(e) => tracing::error!(error = %e, "worker panicked"),
    }
    stop_writer.cancel();
    if let Some(w) = writing {
        match w.await {
            Ok(stats) => tracing::info!(?stats, "route timings flushed"),
            Err(e) => tracing::error!(error = %e, "route timing writer panicked"),
        }
    }
    served.context("public listener")?;
    metrics.context("metrics listener panicked")?.context("metrics listener")?;
    Ok(())
}

/// The whole process: connect, migrate, bind both listeners, serve until `shutdown`.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    tracing::info!(database = %settings.database, "opening database");
    let db = keel_storage::connect(&settings.database, ConnectMode::Eager)
        .await
        .context("cannot reach the database: check DATABASE_URL")?;
    migrate(&db).await?;
    let listener = TcpListener::bind(settings.bind)
        .await
        .with_context(|| format!("cannot bind HOST_AXUM_BIND={}: is another process using the port?", settings.bind))?;
    let metrics_listener = TcpListener::bind(settings.metrics_bind).await.with_context(|| {
        format!("cannot bind HOST_AXUM_METRICS_BIND={}: is another process using the port?", settings.metrics_bind)
    })?;
    let state = AppState::new(db.clone(), &settings)?;
    let served = serve(listener, metrics_listener, state, shutdown).await;
    db.close().await;
    tracing::info!("shutdown complete");
    served
}

/// A token cancelled on SIGTERM or Ctrl-C.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM; stop with Ctrl-C");
                    let _ = ctrl_c.await;
                    cancel.cancel();
                    return;
                }
            };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
        cancel.cancel();
    });
    token
}
