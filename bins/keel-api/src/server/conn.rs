//! One HTTP/1 connection: hyper serves it; Keel closes it when its headers are slow
//! (`KEEL_HTTP_HEADER_TIMEOUT`) or when it sits idle (`KEEL_HTTP_IDLE_TIMEOUT`).
//!
//! hyper's own `header_read_timeout` is not used: its timer starts whenever hyper waits for a
//! request head, which includes an idle keep-alive connection waiting for its next request, so
//! it would also close idle connections after the (short) header timeout and leave no room for
//! a longer idle timeout. Instead the socket is wrapped to see bytes arrive, the service to see
//! requests start and finish, and one timer per connection watches the phase it is in:
//! - no request in flight, nothing received since the last one: idle, closed `idle_timeout`
//!   after the last byte sent or the last response finished;
//! - no request in flight, bytes received: a head is arriving, closed `header_timeout` after
//!   its first byte unless hyper has parsed it by then;
//! - a request in flight: no connection deadline (the handler has its own time budget).

use crate::config::HttpLimits;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Above hyper's default of 100, so that our own header check (`middleware::header_limits`,
/// which answers 431 problem+json at 100) sees every request that breaks it: at hyper's limit
/// hyper would answer first, with an empty body, before any layer of ours runs.
pub(super) const HYPER_MAX_HEADERS: usize = 256;

/// What the connection is doing, as far as its deadlines care.
struct Phase {
    in_flight: usize,
    /// When the first byte of the next request head arrived (none while idle or in flight).
    head_started: Option<Instant>,
    /// The last response finished or the last byte sent: idle time counts from here.
    last_activity: Instant,
}

/// Shared by the socket wrapper, the service and the connection's watcher.
struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    Idle,
    SlowHeaders,
}

impl Activity {
    fn new() -> Self {
        Self {
            phase: Mutex::new(Phase { in_flight: 0, head_started: None, last_activity: Instant::now() }),
            changed: Notify::new(),
        }
    }

    /// Never held across an await; a poisoned lock only means a panic elsewhere mid-update of
    /// plain numbers, which stay usable.
    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn received(&self) {
        let mut p = self.phase();
        if p.in_flight == 0 && p.head_started.is_none() {
            p.head_started = Some(Instant::now());
            drop(p);
            // The header deadline is usually sooner than the idle one the watcher sleeps on.
            self.changed.notify_one();
        }
    }

    fn sent(&self) {
        self.phase().last_activity = Instant::now();
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        let mut p = self.phase();
        p.in_flight += 1;
        p.head_started = None;
        drop(p);
        self.changed.notify_one();
        InFlight(self.clone())
    }

    fn deadline(&self, limits: &HttpLimits) -> Option<(Instant, Expiry)> {
        let p = self.phase();
        if p.in_flight > 0 {
            return None;
        }
        Some(match p.head_started {
            Some(t) => (t + limits.header_timeout, Expiry::SlowHeaders),
            None => (p.last_activity + limits.idle_timeout, Expiry::Idle),
        })
    }
}

/// A request between the end of its head and the end of its handler.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut p = self.0.phase();
        p.in_flight = p.in_flight.saturating_sub(1);
        p.last_activity = Instant::now();
        drop(p);
        self.0.changed.notify_one();
    }
}

/// The socket, reporting bytes received and sent to the connection's [`Activity`].
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.received();
        }
        res
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.sent();
        }
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.sent();
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves `stream` until the client closes it, a deadline passes, or `shutdown` (then the
/// request in flight finishes and the connection closes; the caller bounds the wait).
pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    app: axum::Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked { inner: stream, activity: activity.clone() });
    let svc = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let in_flight = activity.begin();
            // The rate limiter keys anonymous callers by peer address, as axum::serve provided it.
            req.extensions_mut().insert(ConnectInfo(peer));
            let app = app.clone();
            async move {
                let res = app.oneshot(req.map(axum::body::Body::new)).await;
                drop(in_flight);
                res
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true).max_headers(HYPER_MAX_HEADERS).header_read_timeout(None);
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        let deadline = activity.deadline(&limits);
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = shutdown.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = activity.changed.notified() => {}
            _ = sleep_until(deadline) => {
                // Writes move the idle deadline without waking the watcher: check it again.
                if let Some((at, why)) = activity.deadline(&limits) {
                    if at <= Instant::now() {
                        match why {
                            Expiry::Idle => tracing::debug!(%peer, "closing an idle connection (KEEL_HTTP_IDLE_TIMEOUT)"),
                            Expiry::SlowHeaders => tracing::debug!(%peer, "closing a connection whose request headers did not arrive in time (KEEL_HTTP_HEADER_TIMEOUT)"),
                        }
                        // Dropping hyper's connection closes the socket.
                        return;
                    }
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<(Instant, Expiry)>) {
    match deadline {
        Some((at, _)) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
