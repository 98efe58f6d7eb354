//! [`Worker`]: runs the claim loops, heartbeats, rescue and scheduled tasks until told to
//! stop, then drains: stop claiming, let in-flight jobs finish up to the grace period,
//! release the leases of the rest, flush every recorded outcome.

use super::completer::{self, BatchReport, Pending};
use super::execute::{execute, Done};
use super::job_loop::{self, claim_for, log_claimed, log_skip, pause_text};
use super::metrics::bump;
use super::shared::Shared;
use super::{background, JobObserver, MetricsSnapshot, QueueMetrics, Registry, WorkerSettings};
use crate::cron::{scheduler, CronTick, RetentionTask, ScheduledTask};
use crate::{Finish, PauseReason, QueueError, Rescued, Store, SwitchBoard};
use futures::StreamExt;
use keel_ids::mask_email;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What one [`Worker::tick`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "tick", rename_all = "snake_case")]
pub enum Tick {
    /// An incident switch is on; no connection was opened.
    Switched {
        /// The switch variable that is on.
        var: String,
    },
    /// Paused in the database.
    Paused {
        /// The queue or task pause in force.
        by: PauseReason,
    },
    /// Nothing was runnable.
    Empty,
    /// Jobs were claimed and run.
    Ran {
        /// What they did.
        report: BatchReport,
    },
}

/// The totals of a worker's life, returned when [`Worker::run`] ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerReport {
    /// The worker's counters at the end.
    pub metrics: MetricsSnapshot,
    /// Jobs still running at the shutdown deadline whose leases were given back.
    pub released_at_shutdown: u64,
}

/// Runs jobs and scheduled tasks from a store: one claim loop per configured queue, leases kept
/// by heartbeats, crashed work rescued, and a graceful drain on shutdown (see the module docs).
pub struct Worker {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    settings: WorkerSettings,
    switches: SwitchBoard,
    metrics: Arc<QueueMetrics>,
    observer: Option<Arc<dyn JobObserver>>,
    tasks: Vec<Arc<dyn ScheduledTask>>,
    /// Skipped ticks per scheduled task, reported by that task's next run.
    skipped: Arc<Mutex<HashMap<String, u64>>>,
    /// Claim loops of [`Worker::run`] alive now.
    loops_running: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("worker_id", &self.settings.worker_id).finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker over `store` running `registry`'s handlers, with the built-in
    /// `job_retention` task. Switches default to all off; pass the process's with
    /// [`Worker::with_switches`].
    pub fn new(store: Arc<dyn Store>, registry: impl Into<Arc<Registry>>, settings: WorkerSettings) -> Self {
        let retention: Arc<dyn ScheduledTask> =
            Arc::new(RetentionTask::new(settings.retention, settings.run_log_retention));
        Self {
            store,
            registry: registry.into(),
            settings,
            switches: SwitchBoard::default(),
            metrics: Arc::new(QueueMetrics::default()),
            observer: None,
            tasks: vec![retention],
            skipped: Arc::default(),
            loops_running: Arc::default(),
        }
    }

    /// Obeys `switches`: share one board across the process so a reload reaches every loop.
    pub fn with_switches(mut self, switches: SwitchBoard) -> Self {
        self.switches = switches;
        self
    }

    /// Reports every job start and recorded finish to `observer` (the host's metrics: keel-queue
    /// itself knows no metrics library).
    pub fn with_observer(mut self, observer: Arc<dyn JobObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Adds a scheduled task; a task with the same name as an existing one replaces it.
    pub fn with_task(mut self, task: impl ScheduledTask) -> Self {
        self.tasks.retain(|t| t.name() != task.name());
        self.tasks.push(Arc::new(task));
        self
    }

    /// The worker's live counters, to export as metrics.
    pub fn metrics(&self) -> Arc<QueueMetrics> {
        self.metrics.clone()
    }

    /// The settings the worker runs with.
    pub fn settings(&self) -> &WorkerSettings {
        &self.settings
    }

    /// The switches the worker obeys.
    pub fn switches(&self) -> &SwitchBoard {
        &self.switches
    }

    /// Fresh per-run state over the worker's configuration.
    fn shared(&self) -> Arc<Shared> {
        Arc::new(Shared {
            store: self.store.clone(),
            registry: self.registry.clone(),
            settings: self.settings.clone(),
            switches: self.switches.clone(),
            metrics: self.metrics.clone(),
            observer: self.observer.clone(),
            in_flight: Mutex::new(HashMap::new()),
            abandon: CancellationToken::new(),
            to_release: Mutex::new(Vec::new()),
            poll: self.settings.poll_for(self.store.backend()),
            skipped: self.skipped.clone(),
            loops_running: self.loops_running.clone(),
        })
    }

    /// How many claim loops of a running [`Worker::run`] are alive: one per served queue while
    /// it runs, fewer if one died, none before it starts or after it stops. For health checks.
    pub fn claim_loops_running(&self) -> usize {
        self.loops_running.load(Ordering::SeqCst)
    }

    /// Runs until `cancel`, then drains (see the module docs). Errors only if nothing can
    /// start; database outages while running are retried with backoff, never returned.
    pub async fn run(&self, cancel: CancellationToken) -> Result<WorkerReport, QueueError> {
        self.settings.check()?;
        let shared = &self.shared();
        shared.store.check_worker_pool()?;
        let bg = CancellationToken::new();
        if let Err(e) = shared.store.start_wakeups(bg.clone()).await {
            tracing::warn!(event = "wakeups_unavailable", error = %mask_email(&e.to_string()),
                poll_ms = shared.poll.as_millis() as u64, "no wakeup channel yet; polling until it connects");
        }
        tracing::info!(event = "worker_started", worker = %shared.settings.worker_id,
            queues = ?shared.settings.queues.iter().map(|q| q.queue.as_str()).collect::<Vec<_>>(),
            kinds = ?shared.registry.kinds().collect::<Vec<_>>());
        let hard_stop = CancellationToken::new();
        let (tx, rx) = mpsc::unbounded_channel::<Pending>();
        let completer = tokio::spawn(completer::run(shared.clone(), rx, hard_stop.clone()));
        let heartbeat = tokio::spawn(background::heartbeats(shared.clone(), bg.clone()));
        let rescue = tokio::spawn(background::rescues(shared.clone(), bg.clone()));
        let tracker = TaskTracker::new();
        let loops: Vec<_> = shared
            .settings
            .queues
            .iter()
            .map(|q| {
                tokio::spawn(job_loop::run(shared.clone(), q.clone(), tx.clone(), tracker.clone(), cancel.clone()))
            })
            .collect();
        drop(tx);
        let scheduler = tokio::spawn(scheduler::run(shared.clone(), self.tasks.clone(), cancel.clone()));

        cancel.cancelled().await;
        tracing::info!(event = "worker_stopping", in_flight = shared.held_leases().len(), "no new claims; draining");
        for l in loops {
            let _ = l.await;
        }
        // No claim follows: a connection the store kept for the claim loops goes back now, so
        // the host's pool can close without waiting for this worker to be dropped.
        shared.store.claims_stopped();
        // The jobs claimed but never started were given back as the loops ended: released now,
        // not after the running jobs' grace period, which can outlast their lease (they are no
        // longer heartbeated, and a rescue would spend an attempt of each).
        let mut released = release_given_back(shared).await;
        tracker.close();
        if tokio::time::timeout(shared.settings.shutdown_grace, tracker.wait()).await.is_err() {
            tracing::warn!(
                event = "shutdown_deadline",
                still_running = tracker.len(),
                "grace period over; abandoning running jobs and releasing their leases"
            );
            shared.abandon_all();
            tracker.wait().await;
        }
        released += release_given_back(shared).await;
        // Every sender is gone now; the completer flushes what is left and ends.
        let mut completer = completer;
        if tokio::time::timeout(shared.settings.shutdown_grace, &mut completer).await.is_err() {
            hard_stop.cancel();
            let _ = completer.await;
        }
        let _ = scheduler.await;
        bg.cancel();
        let _ = heartbeat.await;
        let _ = rescue.await;
        tracing::info!(event = "worker_stopped", worker = %shared.settings.worker_id);
        Ok(WorkerReport { metrics: shared.metrics.snapshot(), released_at_shutdown: released })
    }

    /// One claim-and-run pass over `queue`, finishing synchronously: for tests, drills and
    /// one-shot tools. No heartbeats run, so keep its jobs shorter than the lease. Finishes the
    /// database cannot take yet are retried for up to a lease, then counted in
    /// [`BatchReport::lost`](super::BatchReport::lost): those jobs run again after their lease.
    pub async fn tick(&self, queue: &str) -> Result<Tick, QueueError> {
        self.settings.check()?;
        let shared = &self.shared();
        let q = shared.settings.queues.iter().find(|q| q.queue == queue).cloned().ok_or_else(|| {
            QueueError::invalid("queue name", format!("{queue:?} is not served by this worker (KEEL_WORKER_QUEUES)"))
        })?;
        if let Some(var) = shared.switches.current().task_disabled_by(&q.task) {
            let n = shared.skip(&q.task);
            log_skip(shared, &q.task, &format!("{var}=true"), n);
            return Ok(Tick::Switched { var });
        }
        let jobs = shared.store.claim(claim_for(shared, &q, q.batch_size, None)).await?;
        if jobs.is_empty() {
            if let Some(by) = shared.store.pause_reason(q.queue.clone(), q.task.clone()).await? {
                let n = shared.skip(&q.task);
                log_skip(shared, &q.task, &pause_text(&by), n);
                return Ok(Tick::Paused { by });
            }
            bump(&shared.metrics.empty_runs, 1);
            tracing::debug!(event = "empty_run", queue = %q.queue, task = %q.task);
            return Ok(Tick::Empty);
        }
        let claimed = jobs.len() as u64;
        bump(&shared.metrics.claimed, claimed);
        let skipped = shared.take_skipped(&q.task);
        log_claimed(&q, jobs.len(), skipped);
        let pending: Vec<Pending> = futures::stream::iter(jobs)
            .map(|job| async move {
                let lease = job.lease()?;
                let token = shared.hold(lease);
                let job = Arc::new(job);
                match execute(shared, job.clone(), token).await {
                    (Done::Finish(outcome), ran_for) => {
                        Some(Pending { finish: Finish { lease, outcome }, job, ran_for, slot: None })
                    }
                    (Done::Interrupted | Done::LeaseLost, _) => None,
                }
            })
            .buffer_unordered(q.concurrency as usize)
            .filter_map(|p| async move { p })
            .collect()
            .await;
        // A one-shot pass ends even while the database is down: past the lease, retrying the
        // finishes gains nothing (the jobs are rescued by then, and a late finish is refused
        // as stale), so they are reported lost, as a running worker's are at its hard stop.
        let give_up = CancellationToken::new();
        let deadline = tokio::spawn({
            let (give_up, lease) = (give_up.clone(), shared.settings.lease);
            async move {
                tokio::time::sleep(lease).await;
                give_up.cancel();
            }
        });
        let mut report = completer::flush(shared, pending, &give_up).await;
        deadline.abort();
        report.claimed = claimed;
        report.skipped_ticks = skipped;
        Ok(Tick::Ran { report })
    }

    /// One rescue pass now (the running worker does this every `rescue_interval`).
    pub async fn rescue_now(&self) -> Result<Vec<Rescued>, QueueError> {
        background::rescue_once(&self.shared()).await
    }

    /// One tick of the scheduled task `name`, as the running worker does every second:
    /// switches first (no connection), then a run if it is due.
    pub async fn cron_tick(&self, name: &str) -> Result<CronTick, QueueError> {
        let task = self.tasks.iter().find(|t| t.name() == name).cloned().ok_or_else(|| {
            QueueError::invalid("task name", format!("{name:?} is not a scheduled task of this worker"))
        })?;
        scheduler::tick(&self.shared(), task.as_ref(), &CancellationToken::new()).await
    }
}

/// Releases the leases given back so far (jobs never started, or abandoned at the deadline):
/// runnable again at once, their attempt not spent. Returns how many were released.
async fn release_given_back(shared: &Shared) -> u64 {
    let leases = shared.take_releases();
    if leases.is_empty() {
        return 0;
    }
    match shared.store.release(leases.clone()).await {
        Ok(n) => {
            bump(&shared.metrics.released, n);
            tracing::info!(event = "leases_released", count = n, "unfinished jobs are runnable again at once");
            n
        }
        Err(e) => {
            tracing::warn!(event = "release_failed", count = leases.len(), error = %mask_email(&e.to_string()),
                "could not release leases; the jobs will be rescued when their leases expire");
            0
        }
    }
}
