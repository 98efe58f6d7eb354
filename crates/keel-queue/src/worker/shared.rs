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
    /// Cancelled when the shutdown deadline passes ([`Shared::abandon_all`]): handlers still
    /// running are abandoned.
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
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        self.hold_in(&mut map, lease)
    }

    /// A job's own token, not a child of [`Shared::abandon`]: a child takes the parent's lock
    /// when made and again when dropped, and every job's did, one parent for the whole worker
    /// (issue #19). Abandoning cancels the tokens through this map instead, under the same
    /// lock, so a token made after the deadline starts cancelled.
    fn hold_in(&self, map: &mut HashMap<JobId, InFlight>, lease: Lease) -> CancellationToken {
        let cancel = CancellationToken::new();
        if self.abandon.is_cancelled() {
            cancel.cancel();
        }
        map.insert(lease.job, InFlight { lease, cancel: cancel.clone(), finishing: false });
        cancel
    }

    /// The shutdown deadline passed: every job held is told to stop.
    pub(crate) fn abandon_all(&self) {
        self.abandon.cancel();
        for f in self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).values() {
            f.cancel.cancel();
        }
    }

    /// [`Shared::hold`] for a whole claim under one lock (the map is shared with every running
    /// job's task and the completer); `None` for a job without a lease.
    pub(crate) fn hold_all(&self, jobs: &[crate::Job]) -> Vec<Option<CancellationToken>> {
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        jobs.iter().map(|j| Some(self.hold_in(&mut map, j.lease()?))).collect()
    }

    /// The completer has these finishes in hand: a heartbeat that finds their lease gone is
    /// racing the completer's write, not a lost lease. Marked when the completer takes a batch
    /// (one lock per flush): until then the finish cannot have been written, so a lease found
    /// gone before it was taken is truly lost.
    pub(crate) fn mark_finishing(&self, leases: impl IntoIterator<Item = Lease>) {
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        for lease in leases {
            if let Some(f) = map.get_mut(&lease.job).filter(|f| f.lease == lease) {
                f.finishing = true;
            }
        }
    }

    /// Stops holding (heartbeating) these leases. A job's entry goes only under the lease it
    /// was held by: the same job may have been claimed again meanwhile (a retry due at once,
    /// claimed while its finish was being recorded), and that run is held under its own.
    pub(crate) fn drop_held(&self, leases: impl IntoIterator<Item = Lease>) {
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        for lease in leases {
            if map.get(&lease.job).is_some_and(|f| f.lease == lease) {
                map.remove(&lease.job);
            }
        }
    }

    pub(crate) fn held_leases(&self) -> Vec<Lease> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).values().map(|f| f.lease).collect()
    }

    pub(crate) fn give_back(&self, lease: Lease) {
        self.drop_held([lease]);
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
pub(crate) struct HandSlot(Option<Arc<Semaphore>>);

impl HandSlot {
    pub(crate) fn new(hand: Arc<Semaphore>) -> Self {
        Self(Some(hand))
    }

    /// Returns a flush's units together: one `add_permits` (a lock on the semaphore) per run
    /// of slots of the same loop instead of one per job.
    pub(crate) fn release_all(slots: impl IntoIterator<Item = HandSlot>) {
        let mut run: Option<(Arc<Semaphore>, usize)> = None;
        for mut slot in slots {
            let Some(hand) = slot.0.take() else { continue };
            match &mut run {
                Some((same, n)) if Arc::ptr_eq(same, &hand) => *n += 1,
                _ => {
                    if let Some((prev, n)) = run.replace((hand, 1)) {
                        prev.add_permits(n);
                    }
                }
            }
        }
        if let Some((hand, n)) = run {
            hand.add_permits(n);
        }
    }
}

impl Drop for HandSlot {
    fn drop(&mut self) {
        if let Some(hand) = self.0.take() {
            hand.add_permits(1);
        }
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
