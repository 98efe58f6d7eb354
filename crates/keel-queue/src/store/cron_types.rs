//! Values exchanged with a [`super::CronStore`]: runs, outcomes, pauses.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

/// How a run ended; the execution log's `outcome` column.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CronOutcome {
    /// Did work.
    Ok,
    /// Ran and found nothing to do; visible so "succeeded but did nothing" is never silent.
    Empty,
    /// The task returned an error (recorded in the run's `error`).
    Failed,
    /// A due run was skipped because the task was paused in the database.
    SkippedPaused,
    /// The run's worker stopped heartbeating before finishing (found by another worker).
    Stuck,
}

impl CronOutcome {
    /// The stored name: `ok`, `empty`, `failed`, `skipped_paused`, `stuck`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Empty => "empty",
            Self::Failed => "failed",
            Self::SkippedPaused => "skipped_paused",
            Self::Stuck => "stuck",
        }
    }
}

impl fmt::Display for CronOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CronOutcome {
    type Err = crate::QueueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Ok, Self::Empty, Self::Failed, Self::SkippedPaused, Self::Stuck]
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| crate::QueueError::Corrupt(format!("unknown cron outcome {s:?}")))
    }
}

/// Whether a run is still going.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CronRunState {
    /// Started, not yet finished (its lease says whether its worker is alive).
    Running,
    /// Ended; see its outcome.
    Finished,
}

impl CronRunState {
    /// A run's state as stored: anything but `running` or `finished` is corrupt data, never
    /// read as one of them.
    pub(crate) fn from_column(s: &str) -> Result<Self, crate::QueueError> {
        match s {
            "running" => Ok(Self::Running),
            "finished" => Ok(Self::Finished),
            other => Err(crate::QueueError::Corrupt(format!("state {other:?} of keel_cron_runs is unknown"))),
        }
    }
}

/// A run's tally as stored (`items`, `skipped_ticks`): a negative one is corrupt data, never
/// read as zero.
pub(crate) fn run_tally(field: &'static str, n: i64) -> Result<u64, crate::QueueError> {
    u64::try_from(n)
        .map_err(|_| crate::QueueError::Corrupt(format!("{field} is {n} in keel_cron_runs; it cannot be negative")))
}

/// One row of the execution log.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CronRun {
    /// The run's id.
    pub id: Uuid,
    /// The task's name.
    pub task: String,
    /// Running or finished.
    pub state: CronRunState,
    /// How it ended, once finished.
    pub outcome: Option<CronOutcome>,
    /// The worker that ran it.
    pub worker: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// The compare-and-set value: a heartbeat or finish must present the latest one.
    pub heartbeat_at: DateTime<Utc>,
    /// When the run's lease runs out unless heartbeated.
    pub lease_expires_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// Items the task reported processing.
    pub items: u64,
    /// Ticks this worker skipped (switches or pauses) before this run.
    pub skipped_ticks: u64,
    /// The task's error, for a failed run.
    pub error: Option<String>,
}

/// A request to start a run of `task`.
#[derive(Debug, Clone)]
pub struct CronBegin {
    /// The task's name.
    pub task: String,
    /// The worker asking.
    pub worker: String,
    /// The run's lease.
    pub lease: Duration,
    /// When the task is first due if it has never been scheduled (interval tasks: now; cron
    /// tasks: their next occurrence).
    pub first_due: DateTime<Utc>,
    /// The slot after this one, taken if this one is claimed.
    pub next_due: DateTime<Utc>,
    /// Ticks this worker skipped before this one, recorded on the run.
    pub skipped_ticks: u64,
}

/// What [`super::CronStore::cron_begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronBegun {
    /// Whether a run started, and if not, why.
    pub start: CronStart,
    /// Runs of this task found with an expired lease and marked `stuck` on the way.
    pub stuck: Vec<CronRun>,
}

/// The answer to a [`CronBegin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CronStart {
    /// A run started; run the task and finish it.
    Started(CronRun),
    /// Not due yet; due at this time.
    NotDue {
        /// When the task is next due.
        next_run_at: DateTime<Utc>,
    },
    /// Another run of the task is active and its lease is current.
    AlreadyRunning {
        /// That run's id.
        run: Uuid,
        /// The worker running it.
        worker: String,
    },
    /// Paused in the database by `by` (the task's own name or `all`); the slot was taken and
    /// a `skipped_paused` run recorded.
    Paused {
        /// The pause's name: the task's own, or `all`.
        by: String,
    },
}

/// A task paused in the database (`all` pauses every task).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CronPause {
    /// The task's name, or `all`.
    pub task: String,
    /// When it was paused.
    pub paused_at: DateTime<Utc>,
    /// Who paused it, as the operator said.
    pub paused_by: Option<String>,
}

/// Which execution-log rows [`super::CronStore::cron_runs`] returns.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only this task's runs.
    pub task: Option<String>,
    /// Newest first; at most 1,000 (default 50).
    pub limit: Option<u32>,
}

impl RunFilter {
    pub(crate) fn limit(&self) -> i64 {
        i64::from(self.limit.unwrap_or(50).clamp(1, 1000))
    }
}
