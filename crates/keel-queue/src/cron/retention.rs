//! The built-in `job_retention` task: prunes completed and cancelled jobs past the retention
//! age, and old execution-log rows, so the jobs table and its indexes stay small.

use super::{Schedule, ScheduledTask, TaskContext, TaskError};
use futures::future::BoxFuture;
use std::time::Duration;

/// The built-in `job_retention` task (see the module docs); every [`crate::Worker`] has it.
#[derive(Debug, Clone)]
pub struct RetentionTask {
    schedule: Schedule,
    jobs_older_than: Duration,
    runs_older_than: Duration,
}

impl RetentionTask {
    /// The task's name; `DISABLE_JOB_RETENTION_CRON=true` switches it off.
    pub const NAME: &'static str = "job_retention";

    /// Hourly: deletes are batched, so a run after a long gap is still a series of short
    /// statements.
    pub fn new(jobs_older_than: Duration, runs_older_than: Duration) -> Self {
        Self { schedule: Schedule::every(Duration::from_secs(3600)), jobs_older_than, runs_older_than }
    }
}

impl ScheduledTask for RetentionTask {
    fn name(&self) -> &str {
        Self::NAME
    }
    fn schedule(&self) -> &Schedule {
        &self.schedule
    }
    fn run(&self, ctx: TaskContext) -> BoxFuture<'static, Result<u64, TaskError>> {
        let (jobs, runs) = (self.jobs_older_than, self.runs_older_than);
        Box::pin(async move {
            let pruned = ctx.store.prune(jobs).await?;
            let logs = ctx.store.cron_prune(runs).await?;
            Ok(pruned + logs)
        })
    }
}
