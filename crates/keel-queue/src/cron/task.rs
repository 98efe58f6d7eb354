//! A scheduled task: a name, a schedule, and an async body that reports how many items it
//! processed (0 is logged as `empty`, so a run that did nothing is visible).

use super::Schedule;
use crate::Store;
use futures::future::BoxFuture;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why a run failed; recorded in the execution log (emails masked in logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError(pub String);

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for TaskError {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

/// What a task's run gets: the store, a cancellation token and the worker's id.
#[derive(Clone)]
pub struct TaskContext {
    /// The worker's store, for tasks that maintain the queue itself.
    pub store: Arc<dyn Store>,
    /// Cancelled on shutdown or when the run's lease is lost; stop at the next safe point.
    pub cancel: CancellationToken,
    /// The id of the worker running this task.
    pub worker: String,
}

/// A named periodic task. Across every worker sharing the database, at most one run of a task
/// is active at a time; each run is recorded in the execution log.
pub trait ScheduledTask: Send + Sync + 'static {
    /// Lowercase, like `job_retention`; its switch is `DISABLE_<NAME>_CRON`.
    fn name(&self) -> &str;
    /// When the task is due.
    fn schedule(&self) -> &Schedule;
    /// How long a run holds the task without a heartbeat (heartbeats every third of it).
    fn lease(&self) -> Duration {
        Duration::from_secs(60)
    }
    /// Does the work; returns the number of items processed.
    fn run(&self, ctx: TaskContext) -> BoxFuture<'static, Result<u64, TaskError>>;
}

type TaskFn = Arc<dyn Fn(TaskContext) -> BoxFuture<'static, Result<u64, TaskError>> + Send + Sync>;

/// A task from a closure.
#[derive(Clone)]
pub struct FnTask {
    name: String,
    schedule: Schedule,
    lease: Duration,
    f: TaskFn,
}

impl FnTask {
    /// A task named `name` running `f` on `schedule`, with a 60 s lease.
    pub fn new<F, Fut>(name: &str, schedule: Schedule, f: F) -> Self
    where
        F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<u64, TaskError>> + Send + 'static,
    {
        Self { name: name.to_owned(), schedule, lease: Duration::from_secs(60), f: Arc::new(move |c| Box::pin(f(c))) }
    }

    /// How long a run holds the task without a heartbeat (default 60 s).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }
}

impl ScheduledTask for FnTask {
    fn name(&self) -> &str {
        &self.name
    }
    fn schedule(&self) -> &Schedule {
        &self.schedule
    }
    fn lease(&self) -> Duration {
        self.lease
    }
    fn run(&self, ctx: TaskContext) -> BoxFuture<'static, Result<u64, TaskError>> {
        (self.f)(ctx)
    }
}
