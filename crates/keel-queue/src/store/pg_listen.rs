//! The Postgres wakeup listener: one dedicated connection LISTENing on `keel_jobs`, turning
//! each notification into an in-process [`Wakeup`]. Reconnects on its own; after any gap it
//! wakes the workers once, since notifications sent meanwhile are lost.

use super::pg::CHANNEL;
use crate::{QueueError, Wakeup};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Longest wait between reconnect attempts while the database is down.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(10);

/// The smallest pool a PostgreSQL worker runs on: the listener holds one connection from the
/// pool for as long as it listens (sqlx's `PgListener::connect_with`), and the claims, finishes
/// and heartbeats need at least one more between them.
pub(crate) const MIN_WORKER_POOL: u32 = 2;

/// Refuses a pool of `max` connections too small for a worker (see [`MIN_WORKER_POOL`]).
pub(crate) fn check_pool(max: u32) -> Result<(), QueueError> {
    if max >= MIN_WORKER_POOL {
        return Ok(());
    }
    Err(QueueError::Invalid {
        field: "database pool size",
        message: format!(
            "the pool allows {max} connection(s); a PostgreSQL worker keeps one LISTENing for wakeups and \
             needs at least one more for its claims and finishes: allow {MIN_WORKER_POOL} or more \
             (KEEL_DB_MAX_CONNECTIONS in Keel's binaries)"
        ),
    })
}

/// Listens until `cancel`. Returns once the first LISTEN succeeded, or with the first
/// connection error (the task keeps retrying in the background either way).
pub(crate) async fn start(pool: PgPool, wake: Wakeup, cancel: CancellationToken) -> Result<(), QueueError> {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<(), QueueError>>();
    tokio::spawn(run(pool, wake, cancel, ready_tx));
    ready_rx.await.unwrap_or_else(|_| Err(QueueError::Unavailable("the wakeup listener stopped".into())))
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut l = PgListener::connect_with(pool).await?;
    l.listen(CHANNEL).await?;
    Ok(l)
}

async fn run(
    pool: PgPool,
    wake: Wakeup,
    cancel: CancellationToken,
    ready: tokio::sync::oneshot::Sender<Result<(), QueueError>>,
) {
    let mut ready = Some(ready);
    let mut delay = Duration::from_millis(100);
    loop {
        let conn = tokio::select! {
            _ = cancel.cancelled() => return,
            c = connect(&pool) => c,
        };
        let mut listener = match conn {
            Ok(l) => l,
            Err(e) => {
                let err = QueueError::from(e);
                tracing::warn!(event = "wakeup_listener_down", error = %err, retry_in_ms = delay.as_millis() as u64,
                    "cannot LISTEN for job wakeups; workers poll meanwhile");
                if let Some(r) = ready.take() {
                    let _ = r.send(Err(err));
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(MAX_RECONNECT_DELAY);
                continue;
            }
        };
        delay = Duration::from_millis(100);
        // Anything enqueued while we were not listening is found by this wake (sent before
        // reporting ready, so a caller that arms a waiter afterwards sees only new wakes).
        wake.wake();
        if let Some(r) = ready.take() {
            let _ = r.send(Ok(()));
        }
        loop {
            let msg = tokio::select! {
                _ = cancel.cancelled() => return,
                m = listener.try_recv() => m,
            };
            match msg {
                Ok(Some(_)) => wake.wake(),
                Ok(None) => {
                    // Connection lost; try_recv reconnects on the next call. Wake in case
                    // something was missed.
                    wake.wake();
                }
                Err(e) => {
                    tracing::warn!(event = "wakeup_listener_down", error = %QueueError::from(e), "job wakeup listener failed; reconnecting");
                    break;
                }
            }
        }
    }
}
