//! The worker runtime: handlers by kind, claim loops per queue, batched finishes, leases
//! kept alive by heartbeats, rescue of crashed work, graceful shutdown.

mod background;
mod completer;
mod execute;
mod handler;
mod job_loop;
mod metrics;
mod observer;
mod runners;
mod runtime;
mod settings;
pub(crate) mod shared;

pub use completer::BatchReport;
pub use handler::{JobContext, JobError, JobErrorKind, Registry};
pub use metrics::{MetricsSnapshot, QueueMetrics};
pub use observer::{JobFinished, JobObserver, JobOutcome, JobStarted};
pub use runtime::{Tick, Worker, WorkerReport};
pub use settings::{batch_for_concurrency, default_worker_id, QueueSettings, WorkerSettings, MIN_LEASE};

pub(crate) use job_loop::{log_skip, pause_text};

pub(crate) fn bump_counter(c: &std::sync::atomic::AtomicU64) {
    metrics::bump(c, 1);
}
