//! [`SharedSnapshot`]: one bounded [`QueueSnapshot`] per interval, shared by every reader
//! (metrics scrapers, health probes), so scrape load costs the database at most one query per
//! interval however many scrapers there are.

use crate::{QueueError, QueueSnapshot, Store};
use futures::future::{BoxFuture, FutureExt, Shared};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// What a reader gets: the snapshot, or why the refresh failed (both shared by all readers).
pub type SnapshotResult = Result<Arc<QueueSnapshot>, Arc<QueueError>>;

type Source = Box<dyn Fn() -> BoxFuture<'static, Result<QueueSnapshot, QueueError>> + Send + Sync>;
type Refresh = Shared<BoxFuture<'static, SnapshotResult>>;

struct State {
    /// When the last refresh started (the interval counts from there).
    started_at: Option<Instant>,
    /// The last refresh, running or done; readers within the interval share its result.
    current: Option<Refresh>,
    /// The last successful snapshot, for readers that prefer stale values to none.
    last_good: Option<Arc<QueueSnapshot>>,
}

struct Inner {
    source: Source,
    interval: Duration,
    refreshes: AtomicU64,
    state: Mutex<State>,
}

/// A queue snapshot taken at most once per `interval` and shared by all readers. Cheap to
/// clone (one shared cache).
///
/// A refresh runs as its own task: a reader that gives up (its own timeout) does not cancel
/// it, so the next reader gets its result instead of starting another query. A refresh still
/// running when the interval ends is waited for, never doubled. Failures count as a refresh
/// too (a struggling database is not asked again before the interval ends).
#[derive(Clone)]
pub struct SharedSnapshot {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SharedSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSnapshot")
            .field("interval", &self.inner.interval)
            .field("refreshes", &self.refreshes())
            .finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SharedSnapshot {
    /// Snapshots of `store`, each bounded by `limit` in the database
    /// ([`crate::JobStore::snapshot_within`]), at most one per `interval`.
    pub fn new(store: Arc<dyn Store>, interval: Duration, limit: Duration) -> Self {
        Self::from_fn(interval, move || {
            let store = store.clone();
            async move { store.snapshot_within(limit).await }.boxed()
        })
    }

    /// Snapshots from any source (tests count its calls; hosts may wrap the store).
    pub fn from_fn<F>(interval: Duration, source: F) -> Self
    where
        F: Fn() -> BoxFuture<'static, Result<QueueSnapshot, QueueError>> + Send + Sync + 'static,
    {
        Self {
            inner: Arc::new(Inner {
                source: Box::new(source),
                interval,
                refreshes: AtomicU64::new(0),
                state: Mutex::new(State { started_at: None, current: None, last_good: None }),
            }),
        }
    }

    /// The snapshot of this interval: taken now if the last one started `interval` ago or
    /// more (and is not still running), otherwise the one already taken or being taken.
    pub async fn get(&self) -> SnapshotResult {
        let refresh = {
            let mut st = lock(&self.inner.state);
            let running = st.current.as_ref().is_some_and(|c| c.peek().is_none());
            let due = st.started_at.is_none_or(|t| t.elapsed() >= self.inner.interval);
            match (&st.current, due && !running) {
                (Some(c), false) => c.clone(),
                _ => {
                    let r = self.start();
                    st.started_at = Some(Instant::now());
                    st.current = Some(r.clone());
                    r
                }
            }
        };
        refresh.await
    }

    /// The last snapshot that succeeded, however old (`None` before the first success).
    pub fn last_good(&self) -> Option<Arc<QueueSnapshot>> {
        lock(&self.inner.state).last_good.clone()
    }

    /// How many refreshes (queries) have been started so far.
    pub fn refreshes(&self) -> u64 {
        self.inner.refreshes.load(Ordering::Relaxed)
    }

    /// The refresh interval.
    pub fn interval(&self) -> Duration {
        self.inner.interval
    }

    fn start(&self) -> Refresh {
        self.inner.refreshes.fetch_add(1, Ordering::Relaxed);
        let query = (self.inner.source)();
        let inner = self.inner.clone();
        let task = tokio::spawn(async move {
            let res = query.await.map(Arc::new).map_err(Arc::new);
            match &res {
                Ok(s) => lock(&inner.state).last_good = Some(s.clone()),
                // Once per refresh, however many readers share the failure.
                Err(e) => {
                    tracing::warn!(event = "queue_snapshot_failed", error = %keel_ids::mask_email(&e.to_string()),
                    "queue snapshot failed; readers keep the last good one until the next interval")
                }
            }
            res
        });
        async move {
            match task.await {
                Ok(r) => r,
                Err(e) => Err(Arc::new(QueueError::Database(format!("queue snapshot task failed: {e}")))),
            }
        }
        .boxed()
        .shared()
    }
}
