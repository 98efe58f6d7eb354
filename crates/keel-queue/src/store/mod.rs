//! The storage contract: [`JobStore`] for jobs, [`CronStore`] for scheduled-task runs, and
//! the values they exchange. One implementation per backend ([`PgStore`], [`SqliteStore`]),
//! both held to the same conformance suite (`tests/it`).
//!
//! Methods return boxed futures so the worker can hold an `Arc<dyn Store>` and tests can wrap
//! one. Backend-only abilities (enqueue inside the caller's transaction) are inherent
//! methods of the concrete stores.

mod claim_sql;
#[cfg(test)]
mod claim_sql_tests;
mod cron_types;
mod job_cols;
mod pg;
mod pg_claim_conn;
mod pg_cron;
mod pg_listen;
mod pg_ops;
mod sqlite;
mod sqlite_cron;
mod sqlite_ops;
pub(crate) mod sqlite_turn;
mod sqlite_writer;

pub use cron_types::{CronBegin, CronBegun, CronOutcome, CronPause, CronRun, CronRunState, CronStart, RunFilter};
pub use pg::PgStore;
pub use sqlite::SqliteStore;

use crate::{Clock, Enqueued, Job, JobId, JobState, Keyring, Lease, NewJob, QueueError, QueueSnapshot, Wakeup};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use keel_ids::OrgId;
use keel_storage::{Backend, Db};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Every job, wherever it is kept, for readers (`FROM {ALL_JOBS} j`): `keel_jobs` holds the
/// jobs not yet completed (and, on SQLite or restored from it, completed ones), and
/// `keel_jobs_completed` the jobs PostgreSQL's completion moved out of the hot table (issue
/// #19). The two tables have the same columns in the same order (`tests/it/schema.rs`), so a
/// row reads the same from either; a job is in one of them, never both.
pub(crate) const ALL_JOBS: &str = "(SELECT * FROM keel_jobs UNION ALL SELECT * FROM keel_jobs_completed)";

/// The boxed future every store method returns.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, QueueError>>;

/// A request to claim up to `limit` runnable jobs of one queue.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The queue to claim from.
    pub queue: String,
    /// The scheduled-task name this loop answers to (`background_job`): a database pause of
    /// that task, or of `all`, stops claims just like a queue pause.
    pub task: String,
    /// Jobs claimed at most.
    pub limit: u32,
    /// How long each claim holds its job without a heartbeat.
    pub lease: Duration,
    /// The claiming worker's id, stored as `locked_by`.
    pub worker: String,
    /// Claim only jobs ordered after this one: the worker's loop passes the last job it
    /// claimed, so a burn-down does not walk again, on every claim, the index entries of the
    /// jobs it already took (on PostgreSQL those stay in the claim index as dead entries until
    /// a vacuum: at 20,000 claimed they were half of a claim's time). `None` claims from the
    /// first runnable job. The loop drops the cursor whenever a wakeup says jobs may have
    /// become runnable, after a claim that found fewer jobs than asked, and at least every
    /// poll interval, so a job that sorts before it waits one poll at most.
    pub after: Option<ClaimCursor>,
}

/// A position in the claim order (priority, run_at, id); see [`Claim::after`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimCursor {
    /// The job's priority.
    pub priority: i16,
    /// When it became runnable.
    pub run_at: DateTime<Utc>,
    /// Its id, the tie-breaker.
    pub id: JobId,
}

impl ClaimCursor {
    /// The position of `job` in the claim order.
    pub fn of(job: &Job) -> Self {
        Self { priority: job.priority, run_at: job.run_at, id: job.id }
    }
}

/// How an attempt ended, as reported by the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The handler succeeded.
    Completed,
    /// Retryable failure: run again at `at`, unless attempts are used up (then dead-letter).
    Retry {
        /// The handler's error.
        error: String,
        /// When to run again.
        at: DateTime<Utc>,
    },
    /// Permanent failure: `failed`, never retried.
    Failed {
        /// The handler's error.
        error: String,
    },
    /// Cannot be processed at all (unknown kind, payload that does not decode, oversized).
    DeadLetter {
        /// Why.
        error: String,
    },
}

/// One attempt's end, presented with the lease of its claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    /// The claim being finished; a stale one changes nothing.
    pub lease: Lease,
    /// How the attempt ended.
    pub outcome: Outcome,
}

/// The result of one [`Finish`], in input order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// The finish was accepted; the job is now in this state.
    Accepted(JobState),
    /// The lease was no longer ours (rescued, released, or finished already): nothing changed.
    Stale,
}

/// A job whose lease had expired, found by [`JobStore::rescue_expired`]: the outcome
/// `stuck_processing`, kept apart from handler failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rescued {
    /// The job.
    pub id: JobId,
    /// Its kind.
    pub kind: String,
    /// Its queue.
    pub queue: String,
    /// The attempt that never finished.
    pub attempt: u32,
    /// `retrying`, or `dead_letter` when that was the last attempt.
    pub state: JobState,
    /// The worker that held the lease.
    pub worker: Option<String>,
}

/// Which jobs [`JobStore::list`] returns; every field set narrows the list.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this kind.
    pub kind: Option<String>,
    /// Only jobs in this queue.
    pub queue: Option<String>,
    /// Only jobs of this tenant.
    pub org: Option<OrgId>,
    /// Only jobs older than this one (ids are time-ordered): the keyset cursor of the next
    /// page, the last id of the previous one.
    pub before: Option<JobId>,
    /// Newest first; at most 1,000 (default 100).
    pub limit: Option<u32>,
}

impl JobFilter {
    pub(crate) fn limit(&self) -> i64 {
        i64::from(self.limit.unwrap_or(100).clamp(1, 1000))
    }
}

/// What [`JobStore::requeue_dead`] did.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequeueReport {
    /// Dead jobs made pending again.
    pub requeued: u64,
    /// Dead jobs left dead because another job with their dedupe key is active.
    pub skipped_duplicates: Vec<JobId>,
}

/// Why claims are stopped right now, if they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "paused_by", content = "name", rename_all = "snake_case")]
pub enum PauseReason {
    /// `keel-ops queue pause NAME`.
    Queue(String),
    /// `keel-ops cron pause TASK` (or `all`).
    Task(String),
}

/// Jobs: enqueue, claim under a fenced lease, finish, rescue, and the operator's verbs.
pub trait JobStore: Send + Sync {
    /// The database engine behind the store.
    fn backend(&self) -> Backend;
    /// The store's clock, which stamps every time it writes.
    fn now(&self) -> DateTime<Utc>;
    /// Fired when jobs may have become runnable (an enqueue in this process, or a Postgres
    /// notification once [`JobStore::start_wakeups`] runs).
    fn wakeup(&self) -> &Wakeup;
    /// Starts cross-process wakeups (Postgres LISTEN) until `cancel`; returns once listening.
    /// SQLite returns at once: its wakeups are in-process only and other processes poll.
    fn start_wakeups(&self, cancel: CancellationToken) -> StoreFuture<'_, ()>;

    /// Inserts a job, or finds the active job holding its dedupe key; wakes local workers.
    fn enqueue(&self, job: NewJob) -> StoreFuture<'_, Enqueued>;
    /// All or nothing, in one transaction; results in input order.
    fn enqueue_many(&self, jobs: Vec<NewJob>) -> StoreFuture<'_, Vec<Enqueued>>;

    /// Claims runnable jobs ordered by priority, run_at, id; each gets a fresh fencing token
    /// and a lease of `claim.lease`. Never hands one job to two claimers.
    fn claim(&self, claim: Claim) -> StoreFuture<'_, Vec<Job>>;
    /// Extends the leases still held; returns the jobs whose lease was lost.
    fn heartbeat(&self, leases: Vec<Lease>, lease: Duration) -> StoreFuture<'_, Vec<JobId>>;
    /// Applies finishes in one transaction; stale leases change nothing.
    fn finish(&self, batch: Vec<Finish>) -> StoreFuture<'_, Vec<Finished>>;
    /// Gives leases back without using up the attempt (graceful shutdown): the jobs are
    /// runnable again at once. Returns how many were released.
    fn release(&self, leases: Vec<Lease>) -> StoreFuture<'_, u64>;
    /// Moves up to `limit` jobs whose lease expired to `retrying` (or `dead_letter` when that
    /// was their last attempt). Safe to run from every worker at once.
    fn rescue_expired(&self, limit: u32) -> StoreFuture<'_, Vec<Rescued>>;

    /// One job, if it exists.
    fn get(&self, id: JobId) -> StoreFuture<'_, Option<Job>>;
    /// Jobs matching `filter`, newest first.
    fn list(&self, filter: JobFilter) -> StoreFuture<'_, Vec<Job>>;
    /// Cancels a pending or retrying job.
    fn cancel(&self, id: JobId) -> StoreFuture<'_, Job>;
    /// Runs a job again: failed, dead-lettered or cancelled jobs start over with fresh
    /// attempts; pending or retrying jobs become due now.
    fn retry(&self, id: JobId) -> StoreFuture<'_, Job>;
    /// Requeues every dead-lettered job (of one kind, if given) with fresh attempts.
    fn requeue_dead(&self, kind: Option<String>) -> StoreFuture<'_, RequeueReport>;

    /// Stops claims from `queue` for every worker until resumed; `by` records who.
    fn pause_queue(&self, queue: String, by: Option<String>) -> StoreFuture<'_, ()>;
    /// Returns whether the queue was paused.
    fn resume_queue(&self, queue: String) -> StoreFuture<'_, bool>;
    /// The queues paused now.
    fn paused_queues(&self) -> StoreFuture<'_, Vec<String>>;
    /// Whether claims for this queue and task are paused in the database, and by what.
    fn pause_reason(&self, queue: String, task: String) -> StoreFuture<'_, Option<PauseReason>>;

    /// Counts per state and kind, the oldest waiting job's age and expired leases.
    fn snapshot(&self) -> StoreFuture<'_, QueueSnapshot>;
    /// [`JobStore::snapshot`] bounded by the database itself: PostgreSQL's
    /// `statement_timeout` (set for this transaction only), an interrupting progress handler on
    /// SQLite. Past `limit` it fails with [`QueueError::TimedOut`] and the database has stopped
    /// working on it (a client-side timeout would leave the query running).
    fn snapshot_within(&self, limit: Duration) -> StoreFuture<'_, QueueSnapshot>;
    /// Deletes completed and cancelled jobs that finished before `now - older_than`, in
    /// batches; returns how many.
    fn prune(&self, older_than: Duration) -> StoreFuture<'_, u64>;

    /// The worker's claim loops have stopped: gives back any connection the store kept for
    /// them (PostgreSQL keeps one between claims, SQLite one for the worker's writes), so
    /// closing the pool does not wait for it. A later claim simply takes a connection again.
    /// The default does nothing.
    fn claims_stopped(&self) {}

    /// Whether a worker can run on this store's pool: PostgreSQL's wakeup listener holds one
    /// connection for as long as the worker runs, so a pool of one would leave none for claims
    /// and finishes, and the worker would retry forever without running a job. [`Worker::run`]
    /// refuses to start instead. The default accepts any pool.
    ///
    /// [`Worker::run`]: crate::Worker::run
    fn check_worker_pool(&self) -> Result<(), QueueError> {
        Ok(())
    }

    /// The keys this store seals sensitive jobs with, which the worker opens them with.
    /// `None` (the default): sensitive jobs are refused at enqueue and sealed ones cannot run.
    fn keyring(&self) -> Option<&Keyring> {
        None
    }
}

/// Scheduled-task runs: one active run per task, a compare-and-set heartbeat, the execution
/// log, and the database-stored pauses.
pub trait CronStore: Send + Sync {
    /// Atomically: takes the task's due slot, records a `skipped_paused` run if the task is
    /// paused in the database, marks a run whose lease expired as `stuck`, and starts a run
    /// unless another is active.
    fn cron_begin(&self, begin: CronBegin) -> StoreFuture<'_, CronBegun>;
    /// Extends the run's lease if `run.heartbeat_at` is still the stored value; returns the
    /// run with its new heartbeat, or `None` if the run is no longer ours.
    fn cron_heartbeat(&self, run: CronRun, lease: Duration) -> StoreFuture<'_, Option<CronRun>>;
    /// Records the run's end, under the same compare-and-set; `false` if it was not ours.
    fn cron_finish(
        &self,
        run: CronRun,
        outcome: CronOutcome,
        items: u64,
        error: Option<String>,
    ) -> StoreFuture<'_, bool>;
    /// Marks every run whose lease expired as `stuck`; returns them.
    fn cron_recover_stale(&self) -> StoreFuture<'_, Vec<CronRun>>;
    /// Execution-log rows matching `filter`, newest first.
    fn cron_runs(&self, filter: RunFilter) -> StoreFuture<'_, Vec<CronRun>>;
    /// Pauses a task, or every task with `all`.
    fn cron_pause(&self, task: String, by: Option<String>) -> StoreFuture<'_, ()>;
    /// Resumes a task; `all` clears every pause. Returns whether anything was paused.
    fn cron_resume(&self, task: String) -> StoreFuture<'_, bool>;
    /// The pauses in force.
    fn cron_pauses(&self) -> StoreFuture<'_, Vec<CronPause>>;
    /// Deletes finished runs that started before `now - older_than`.
    fn cron_prune(&self, older_than: Duration) -> StoreFuture<'_, u64>;
}

/// Everything the worker needs from storage.
pub trait Store: JobStore + CronStore {}
impl<T: JobStore + CronStore + ?Sized> Store for T {}

/// Limits and keys applied at enqueue.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Payloads above this many bytes are refused at enqueue (default
    /// [`crate::DEFAULT_MAX_PAYLOAD_BYTES`]); a sealed payload is measured sealed.
    pub max_payload_bytes: usize,
    /// Seals sensitive jobs at enqueue and opens them for the worker (default none: sensitive
    /// jobs are refused).
    pub keyring: Option<Arc<Keyring>>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { max_payload_bytes: crate::DEFAULT_MAX_PAYLOAD_BYTES, keyring: None }
    }
}

impl StoreOptions {
    /// Sets [`StoreOptions::keyring`].
    pub fn keyring(mut self, keyring: Arc<Keyring>) -> Self {
        self.keyring = Some(keyring);
        self
    }
}

/// The store for a database, on the system clock.
pub fn open(db: Db) -> Arc<dyn Store> {
    open_with(db, Arc::new(crate::SystemClock), StoreOptions::default())
}

/// The store for a database on the system clock, sealing sensitive jobs with `keyring`.
pub fn open_sealed(db: Db, keyring: Arc<Keyring>) -> Arc<dyn Store> {
    open_with(db, Arc::new(crate::SystemClock), StoreOptions::default().keyring(keyring))
}

/// The store for a database with a chosen clock, limits and keys.
pub fn open_with(db: Db, clock: Arc<dyn Clock>, options: StoreOptions) -> Arc<dyn Store> {
    match db {
        Db::Postgres(p) => Arc::new(PgStore::new(p).with_clock(clock).with_options(options)),
        Db::Sqlite(p) => Arc::new(SqliteStore::new(p).with_clock(clock).with_options(options)),
    }
}

/// A retry of a job in a state it cannot be retried from (`processing`, `completed`).
pub(crate) fn retry_refused(id: JobId, state: JobState) -> QueueError {
    QueueError::WrongState {
        id,
        state,
        action: "retry",
        allowed: "pending, retrying, failed, dead_letter or cancelled",
    }
}

/// Text appended to a `stuck_processing` error; shared by both backends.
pub(crate) fn stuck_message(worker: Option<&str>, attempt: u32) -> String {
    format!(
        "stuck_processing: worker {} never finalised attempt {attempt} before its lease expired (crashed, hung or cut off)",
        worker.unwrap_or("unknown")
    )
}
