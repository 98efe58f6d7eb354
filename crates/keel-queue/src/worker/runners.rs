//! The run slots of one claim loop: claimed jobs wait in a local queue, and up to
//! `concurrency` runner tasks take them one after another. A runner lives while there is work
//! queued and ends when the queue is empty, so an idle worker holds no task.
//!
//! Runners rather than a task per job (issue #19): spawning a task per job, with a semaphore
//! permit and a task-tracker entry, was about a sixth of the worker's CPU per no-op job in
//! `perf` (allocating and moving the task, waking the other scheduler thread for it, freeing
//! it), and on two cores shared with the database every microsecond of the worker's CPU per
//! job costs about 2% of the burn-down's rate.

use super::completer::Pending;
use super::execute::{execute, Done};
use super::shared::{HandSlot, Shared};
use crate::{Finish, Job, Lease};
use futures::FutureExt;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A claimed job with its cancellation token and its unit of room in hand.
pub(crate) type Claimed = (Job, CancellationToken, HandSlot);

/// The local queue and its runners.
pub(crate) struct RunQueue {
    jobs: Mutex<VecDeque<Claimed>>,
    /// Jobs queued (read by the claimer without the lock, for its low-water mark).
    waiting: AtomicUsize,
    /// Runners alive, at most `concurrency`.
    runners: AtomicUsize,
    concurrency: usize,
    /// Notified when `waiting` falls to `low_water`: the claimer refills.
    pub(crate) low: Notify,
    low_water: usize,
    /// A run slot is free with nothing queued to start (see the claim loop's backlog).
    pub(crate) starving: Starving,
    shared: Arc<Shared>,
    done_tx: mpsc::UnboundedSender<Pending>,
    tracker: TaskTracker,
    /// Runners take no new job once this is cancelled (the worker stops claiming).
    cancel: CancellationToken,
}

impl RunQueue {
    pub(crate) fn new(
        shared: Arc<Shared>,
        concurrency: usize,
        low_water: usize,
        done_tx: mpsc::UnboundedSender<Pending>,
        tracker: TaskTracker,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            jobs: Mutex::new(VecDeque::new()),
            waiting: AtomicUsize::new(0),
            runners: AtomicUsize::new(0),
            concurrency: concurrency.max(1),
            low: Notify::new(),
            low_water,
            // No runner yet, nothing queued: every slot is free.
            starving: Starving::new(true),
            shared,
            done_tx,
            tracker,
            cancel,
        })
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Claimed>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Jobs claimed and not yet started.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Queues a claim's jobs (one lock for all of them) and starts runners for them, up to
    /// the concurrency.
    pub(crate) fn push(self: &Arc<Self>, jobs: impl IntoIterator<Item = Claimed>) {
        let added = {
            let mut q = self.queue();
            let before = q.len();
            q.extend(jobs);
            let added = q.len() - before;
            self.waiting.fetch_add(added, Ordering::AcqRel);
            added
        };
        if added == 0 {
            return;
        }
        self.starving.set(false);
        // After the push (SeqCst, as the runner's exit below): either a runner on its way out
        // sees these jobs, or this sees it gone and starts another.
        self.start_runners(added);
    }

    /// Starts up to `n` runners while slots are free.
    fn start_runners(self: &Arc<Self>, n: usize) {
        for _ in 0..n {
            if !self.take_slot() {
                break;
            }
            let me = self.clone();
            self.tracker.spawn(async move { me.run().await });
        }
    }

    /// The next queued job, unless the worker is stopping.
    fn pop(&self) -> Option<Claimed> {
        if self.cancel.is_cancelled() {
            return None;
        }
        let next = self.queue().pop_front()?;
        if self.waiting.fetch_sub(1, Ordering::AcqRel) - 1 <= self.low_water {
            // Every claim loop of the queue may wait here (each arms its waiter before it
            // looks at `waiting`); waking one per pop could leave the primary loop asleep.
            self.low.notify_waiters();
        }
        Some(next)
    }

    /// One runner: jobs one after another while any are queued.
    async fn run(self: Arc<Self>) {
        // Counts this runner out if it ever unwinds, so its slot is not lost.
        let mut alive = RunnerAlive(&self.runners, true);
        loop {
            let Some((job, token, slot)) = self.pop() else {
                alive.0.fetch_sub(1, Ordering::SeqCst);
                alive.1 = false;
                // A job pushed after the pop above, by a claimer that still counted this
                // runner, is seen here; then this runner goes on if a slot is still free.
                let more = !self.cancel.is_cancelled() && !self.queue().is_empty();
                if more && self.take_slot() {
                    alive.1 = true;
                    continue;
                }
                if !more {
                    self.starving.set(true);
                }
                return;
            };
            let Some(lease) = job.lease() else { continue };
            // The handler's own panics are caught in `execute`; this catches the rest (a host's
            // `JobObserver`, say), so one job's panic never takes a run slot with it. The job is
            // treated as its worker crashed: no longer heartbeated, rescued when its lease
            // expires, run again.
            if AssertUnwindSafe(self.run_one(job, lease, token, slot)).catch_unwind().await.is_err() {
                tracing::error!(event = "job_run_panicked", job_id = %lease.job,
                    "a panic outside the handler while running this job; it is rescued when its lease expires");
                self.shared.drop_held([lease]);
            }
            // Back to the scheduler now and then (after a budget's worth of jobs), so a
            // runner of jobs done at their first poll does not hold a thread.
            tokio::task::consume_budget().await;
        }
    }

    fn take_slot(&self) -> bool {
        let mut alive = self.runners.load(Ordering::SeqCst);
        while alive < self.concurrency {
            match self.runners.compare_exchange(alive, alive + 1, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return true,
                Err(now) => alive = now,
            }
        }
        false
    }

    async fn run_one(&self, job: Job, lease: Lease, token: CancellationToken, slot: HandSlot) {
        let shared = &self.shared;
        let job = Arc::new(job);
        let (done, ran_for) = execute(shared, job.clone(), token).await;
        match done {
            Done::Finish(outcome) => {
                let finish = Finish { lease, outcome };
                let pending = Pending { finish, job, ran_for, slot: Some(slot) };
                if self.done_tx.send(pending).is_err() {
                    // Completer gone (cannot happen before shutdown ends); the lease expires.
                    shared.drop_held([lease]);
                }
            }
            Done::Interrupted => shared.give_back(lease),
            Done::LeaseLost => shared.drop_held([lease]),
        }
    }

    /// The worker stopped claiming: the jobs never started are given back for another worker
    /// now, not left to their lease.
    pub(crate) fn give_back_queued(&self) {
        let left = std::mem::take(&mut *self.queue());
        self.waiting.fetch_sub(left.len(), Ordering::AcqRel);
        for (job, _, _) in left {
            if let Some(l) = job.lease() {
                self.shared.give_back(l);
            }
        }
    }
}

/// Whether a run slot is free with nothing queued to start, and a signal when that begins.
pub(crate) struct Starving {
    on: AtomicBool,
    /// Notified when it turns on.
    pub(crate) begun: Notify,
}

impl Starving {
    pub(crate) fn new(on: bool) -> Self {
        Self { on: on.into(), begun: Notify::new() }
    }

    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    pub(crate) fn set(&self, on: bool) {
        if self.on.swap(on, Ordering::AcqRel) != on && on {
            self.begun.notify_waiters();
        }
    }
}

struct RunnerAlive<'a>(&'a AtomicUsize, bool);

impl Drop for RunnerAlive<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
