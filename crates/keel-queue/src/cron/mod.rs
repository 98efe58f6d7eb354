//! Scheduled work: named periodic tasks (interval or cron expression), at most one active
//! run per task across every worker, a lease kept by compare-and-set heartbeats, recovery of
//! runs whose worker died, and an execution log of every run.

mod retention;
mod schedule;
pub(crate) mod scheduler;
mod task;

pub use retention::RetentionTask;
pub use schedule::Schedule;
pub use scheduler::CronTick;
pub use task::{FnTask, ScheduledTask, TaskContext, TaskError};
