//! keel-queue: a durable background job queue on PostgreSQL or SQLite, with fenced leases,
//! race-free dedupe, rescue of crashed work, scheduled tasks and incident switches.
#![doc = include_str!("../README.md")]
//!
//! ## Layout
//! - [`Job`], [`JobState`], [`Lease`]: the stored job and its state machine.
//! - [`NewJob`], [`JobArgs`], [`KindOptions`]: what callers enqueue.
//! - [`seal`]: sealed job arguments ([`Keyring`], [`Sensitive`]): sensitive payloads are
//!   encrypted at enqueue, opened only in the worker, shown as `[sealed]`, erased on completion.
//! - [`store`]: the [`JobStore`] / [`CronStore`] contract and its Postgres and SQLite
//!   implementations ([`PgStore`], [`SqliteStore`]), held to one conformance suite.
//!
//! **Architecture Invariant:** a job has at most one accepted finish per claim. Every claim
//! bumps the job's fencing token (`lease_seq`); finishing, heartbeating and releasing all
//! match on it, so a worker whose lease was rescued can never complete the job a second
//! time. Delivery is at least once: a handler may run again after a crash.
//!
//! **Architecture Invariant:** a payload (or field) declared [`Sensitive`] is never stored in
//! clear: the store seals it at enqueue or refuses the job, only the worker opens it (just
//! before the handler runs), and completing the job erases it.
//!
//! **Architecture Invariant:** a dedupe key is held only by active jobs (pending,
//! processing, retrying), enforced by a partial unique index, never by check-then-insert.
#![deny(missing_docs)]

mod clock;
pub mod cron;
mod dispatch;
mod error;
mod job;
mod names;
mod new_job;
pub mod ops_json;
mod retry;
mod shared_snapshot;
mod snapshot;
pub mod store;
mod switches;
mod switches_file;
mod throughput;
mod trace;
mod wake;
pub mod worker;

pub mod seal;

mod schema;
pub use clock::{Clock, ManualClock, SystemClock};
pub use dispatch::{DispatchError, Dispatched, Dispatcher};
pub use error::QueueError;
pub use job::{Job, JobId, JobState, Lease};
pub use names::env_name;
pub use new_job::{
    Enqueued, JobArgs, KindOptions, NewJob, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_QUEUE,
};
pub use retry::RetryPolicy;
pub use schema::{migrate, SCHEMA};
pub use seal::{redact_payload, JobKey, KeySettings, Keyring, SealError, Sensitive, SEALED_MARK};
pub use shared_snapshot::{SharedSnapshot, SnapshotResult};
pub use snapshot::{QueueSnapshot, StateCounts};
pub use store::{
    open, open_sealed, open_with, Claim, ClaimCursor, CronStore, Finish, Finished, JobFilter, JobStore, Outcome,
    PauseReason, PgStore, RequeueReport, Rescued, SqliteStore, Store, StoreOptions,
};
pub use switches::{
    is_switch_name, kind_switch, task_switch, SwitchBoard, Switches, GLOBAL_SWITCHES, SWITCHES_FILE_VAR,
};
pub use switches_file::FileSwitches;
pub use throughput::{throughput, MinuteCounts};
/// The token [`Worker::run`] takes, re-exported so callers need not name tokio-util's version.
pub use tokio_util::sync::CancellationToken;
pub use trace::MAX_TRACE_CONTEXT_BYTES;
pub use wake::Wakeup;
pub use worker::{
    batch_for_concurrency, JobContext, JobError, JobErrorKind, JobFinished, JobObserver, JobOutcome, JobStarted,
    QueueSettings, Registry, Worker, WorkerSettings,
};

#[cfg(test)]
mod tests;
