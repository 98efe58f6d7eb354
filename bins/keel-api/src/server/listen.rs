//! The accept loop of one listener: at most `KEEL_HTTP_MAX_CONNECTIONS` connections at once
//! (past it, new ones wait in the kernel's listen backlog instead of exhausting descriptors),
//! each served by [`super::conn`]; on shutdown it stops accepting and lets the connections
//! finish within the drain deadline.

use super::conn;
use crate::config::HttpLimits;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// After a failed accept (out of descriptors, most often), wait this long before the next:
/// retrying at once would spin on the same error while connections close.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// While a listener stays at its cap, the "limit reached" line repeats at most this often:
/// enough for an operator to see it is ongoing, not a line per waiting connection.
const CAP_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Which listener this is, in its log lines. The public one logs exactly `listening` (with
/// `addr`): test harnesses and scripts wait for that line to learn the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Listener {
    Public,
    Metrics,
}

pub(super) async fn accept_until(
    kind: Listener,
    listener: TcpListener,
    app: axum::Router,
    shutdown: CancellationToken,
    drain: Duration,
    limits: HttpLimits,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    match kind {
        Listener::Public => tracing::info!(%addr, "listening"),
        Listener::Metrics => tracing::info!(%addr, "metrics listening"),
    }
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut conns = JoinSet::new();
    let mut cap_logged: Option<tokio::time::Instant> = None;
    loop {
        while conns.try_join_next().is_some() {}
        let slot = match slots.clone().try_acquire_owned() {
            Ok(s) => s,
            Err(_) => {
                if cap_logged.is_none_or(|at| at.elapsed() >= CAP_LOG_INTERVAL) {
                    cap_logged = Some(tokio::time::Instant::now());
                    tracing::warn!(
                        %addr,
                        max_connections = limits.max_connections,
                        "connection limit reached (KEEL_HTTP_MAX_CONNECTIONS); new connections wait until one closes"
                    );
                }
                tokio::select! {
                    s = slots.clone().acquire_owned() => match s {
                        Ok(s) => s,
                        Err(_) => break,
                    },
                    _ = shutdown.cancelled() => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        // Responses are written whole; Nagle would only delay the last segment.
        let _ = stream.set_nodelay(true);
        let (app, shutdown) = (app.clone(), shutdown.clone());
        conns.spawn(async move {
            conn::serve(stream, peer, app, limits, shutdown).await;
            drop(slot);
        });
    }
    // Closing the listener refuses new connections while the open ones drain.
    drop(listener);
    tracing::info!(%addr, deadline_s = drain.as_secs(), connections = conns.len(), "draining in-flight requests");
    let drained = tokio::time::timeout(drain, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        conns.abort_all();
        tracing::warn!(%addr, "drain deadline passed; remaining connections were closed");
    }
    Ok(())
}
