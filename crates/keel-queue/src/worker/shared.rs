//! State shared by a worker's loops: the store, handlers, settings, and the jobs in hand.

use super::{JobObserver, QueueMetrics, Registry, WorkerSettings};
use crate::{JobId, Lease, Store, SwitchBoard};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// A job this worker holds a lease on, from claim until its finish is durable.
pub(crate) struct InFlight {
    pub(crate) lease: Lease,
    /// Cancelled when the lease is lost or the shutdown deadline passes.
    pub(crate) cancel: CancellationToken,
    /// The handler is done and its finish is queued for the completer; a heartbeat that
    /// finds the lease gone is then just racing the completer, not a lost lease.
    pub(crate) finishing: bool,
}

pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) settings: WorkerSettings,
    pub(crate) switches: SwitchBoard,
    pub(crate) metrics: Arc<QueueMetrics>,
    /// The host's per-job hook (metrics), if any.
    pub(crate) observer: Option<Arc<dyn JobObserver>>,
    /// Heartbeats extend exactly these leases.
    pub(crate) in_flight: Mutex<HashMap<JobId, InFlight>>,
    /// Cancelled when the shutdown deadline passes: handlers still running are abandoned.
    pub(crate) abandon: CancellationToken,
    /// Leases of abandoned or never-started jobs, given back in one release at shutdown.
    pub(crate) to_release: Mutex<Vec<Lease>>,
    pub(crate) poll: Duration,
    /// Skipped ticks per scheduled task, reported by that task's next run.
    pub(crate) skipped: Arc<Mutex<HashMap<String, u64>>>,
    /// Claim loops running now (see [`LoopAlive`]).
    pub(crate) loops_running: Arc<AtomicUsize>,
}

impl Shared {
    pub(crate) fn hold(&self, lease: Lease) -> CancellationToken {
        let cancel = self.abandon.child_token();
        let entry = InFlight { lease, cancel: cancel.clone(), finishing: false };
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(lease.job, entry);
        cancel
    }

    pub(crate) fn mark_finishing(&self, id: JobId) {
        if let Some(f) = self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&id) {
            f.finishing = true;
        }
    }

    pub(crate) fn drop_held(&self, ids: impl IntoIterator<Item = JobId>) {
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        for id in ids {
            map.remove(&id);
        }
    }

    pub(crate) fn held_leases(&self) -> Vec<Lease> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).values().map(|f| f.lease).collect()
    }

    pub(crate) fn give_back(&self, lease: Lease) {
        self.drop_held([lease.job]);
        self.to_release.lock().unwrap_or_else(|p| p.into_inner()).push(lease);
    }

    /// Counts a skipped tick of `task`; returns the count since its last run.
    pub(crate) fn skip(&self, task: &str) -> u64 {
        let mut m = self.skipped.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(task.to_owned()).or_default();
        *n += 1;
        *n
    }

    pub(crate) fn skipped(&self, task: &str) -> u64 {
        self.skipped.lock().unwrap_or_else(|p| p.into_inner()).get(task).copied().unwrap_or(0)
    }

    /// Skipped ticks since the last run, reset: the run that reports them takes them.
    pub(crate) fn take_skipped(&self, task: &str) -> u64 {
        self.skipped.lock().unwrap_or_else(|p| p.into_inner()).remove(task).unwrap_or(0)
    }

    pub(crate) fn take_releases(&self) -> Vec<Lease> {
        std::mem::take(&mut *self.to_release.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// One unit of a claim loop's in-hand budget: a job claimed and not yet durably finished.
/// Dropping it (after the finish is flushed, or when the job is given up) returns the unit,
/// so a loop can never claim faster than its finishes are written.
pub(crate) struct HandSlot(pub(crate) Arc<Semaphore>);

impl Drop for HandSlot {
    fn drop(&mut self) {
        self.0.add_permits(1);
    }
}

/// Counts one claim loop as running for as long as it lives: dropped when the loop returns,
/// and when it unwinds from a panic, so a dead loop is never counted (health reads this).
pub(crate) struct LoopAlive(Arc<AtomicUsize>);

impl LoopAlive {
    pub(crate) fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count.clone())
    }
}

impl Drop for LoopAlive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
