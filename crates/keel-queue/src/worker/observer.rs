//! [`JobObserver`]: what a worker tells its host about each job it runs, so the host can keep
//! per-queue and per-kind metrics (durations, start lag, outcomes) without this crate knowing
//! any metrics library.

use std::time::Duration;

/// How a run ended, as recorded in the database (the finish was accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobOutcome {
    /// The handler succeeded; the job is `completed`.
    Completed,
    /// The attempt failed and the job will run again (`retrying`).
    Retried,
    /// A permanent error; the job is `failed`.
    Failed,
    /// Unprocessable or out of attempts; the job is `dead_letter`.
    DeadLettered,
}

impl JobOutcome {
    /// The label value: `completed`, `retried`, `failed` or `dead_lettered` (the words of the
    /// `keel_queue_jobs_*_total` counters).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Retried => "retried",
            Self::Failed => "failed",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

/// A job about to run.
#[derive(Debug, Clone, Copy)]
pub struct JobStarted<'a> {
    /// The job's queue.
    pub queue: &'a str,
    /// The job's kind.
    pub kind: &'a str,
    /// Which attempt this is (1 for the first run).
    pub attempt: u32,
    /// From the job's `run_at` (when it became due) to this start, by the store's clock; zero
    /// when it started early (clock skew between processes).
    pub lag: Duration,
}

/// A run whose outcome the database accepted. Runs whose finish was refused (the lease was
/// lost and the job rescued) or never written are not reported: they run again elsewhere.
#[derive(Debug, Clone, Copy)]
pub struct JobFinished<'a> {
    /// The job's queue.
    pub queue: &'a str,
    /// The job's kind.
    pub kind: &'a str,
    /// Which attempt this was.
    pub attempt: u32,
    /// How it ended.
    pub outcome: JobOutcome,
    /// How long the run took, from its start to the handler's return (or its timeout).
    pub duration: Duration,
}

/// Receives every start and every recorded finish of a [`crate::Worker`]'s jobs
/// ([`crate::Worker::with_observer`]). Both methods are called on the worker's tasks, so they
/// must be quick and must not block: update atomics or a lock-free map, never do I/O.
pub trait JobObserver: Send + Sync {
    /// A claimed job's handler is about to run.
    fn started(&self, job: &JobStarted<'_>) {
        let _ = job;
    }

    /// A run ended and its outcome is durable.
    fn finished(&self, job: &JobFinished<'_>) {
        let _ = job;
    }
}
