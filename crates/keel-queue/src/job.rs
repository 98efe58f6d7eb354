//! A job as stored: its identity, state machine, fencing lease, and history fields.

use chrono::{DateTime, Utc};
use keel_ids::OrgId;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// A job's id: a UUID v7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct JobId(Uuid);

impl JobId {
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn from_uuid(u: Uuid) -> Self {
        Self(u)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for JobId {
    type Err = crate::QueueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s.trim()).map(Self).map_err(|_| {
            crate::QueueError::invalid(
                "job id",
                format!("must be a UUID like 0190f6a4-6c2e-7d4b-9a51-3c6f0e2b9a10, got {s:?}"),
            )
        })
    }
}

/// Where a job is in its life. Active states (`pending`, `processing`, `retrying`) hold the
/// job's dedupe key; the others are final until an operator retries or requeues the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Pending,
    Processing,
    Retrying,
    Completed,
    /// A permanent error: the handler said retrying cannot help.
    Failed,
    /// Attempts used up, or the job cannot be processed at all (unknown kind, bad payload).
    DeadLetter,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 7] = [
        Self::Pending,
        Self::Processing,
        Self::Retrying,
        Self::Completed,
        Self::Failed,
        Self::DeadLetter,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Retrying => "retrying",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::DeadLetter => "dead_letter",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn is_active(self) -> bool {
        matches!(self, Self::Pending | Self::Processing | Self::Retrying)
    }

    pub fn is_final(self) -> bool {
        !self.is_active()
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = crate::QueueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|st| st.as_str() == s.trim()).ok_or_else(|| {
            crate::QueueError::invalid(
                "state",
                format!(
                    "unknown job state {s:?}; use one of pending, processing, retrying, completed, failed, dead_letter, cancelled"
                ),
            )
        })
    }
}

/// Proof of one claim of one job: the job id and the fencing token that claim received.
/// Finishing, heartbeating or releasing needs the lease; a stale one is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Lease {
    pub job: JobId,
    pub token: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub queue: String,
    pub org: Option<OrgId>,
    /// The payload as JSON text.
    pub payload: String,
    pub priority: i16,
    pub state: JobState,
    pub run_at: DateTime<Utc>,
    /// Attempts started so far; during processing, the number of the running attempt.
    pub attempt: u32,
    pub max_attempts: u32,
    pub dedupe_key: Option<String>,
    /// The fencing token of the latest claim.
    pub lease_seq: i64,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The worker holding the lease, while processing.
    pub locked_by: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the latest attempt was claimed.
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Job {
    /// The lease of the current claim, if the job is being processed.
    pub fn lease(&self) -> Option<Lease> {
        (self.state == JobState::Processing).then_some(Lease { job: self.id, token: self.lease_seq })
    }

    pub fn payload_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.payload).unwrap_or(serde_json::Value::Null)
    }
}
