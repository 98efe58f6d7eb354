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
    /// A new id (UUID v7).
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps a UUID read back from storage.
    pub fn from_uuid(u: Uuid) -> Self {
        Self(u)
    }

    /// The UUID inside.
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
    /// Waiting to run (at or after its `run_at`).
    Pending,
    /// Claimed by a worker, under a lease.
    Processing,
    /// Failed an attempt and waits for its retry time.
    Retrying,
    /// The handler succeeded.
    Completed,
    /// A permanent error: the handler said retrying cannot help.
    Failed,
    /// Attempts used up, or the job cannot be processed at all (unknown kind, bad payload).
    DeadLetter,
    /// Cancelled by an operator before it ran.
    Cancelled,
}

impl JobState {
    /// Every state, in life order.
    pub const ALL: [JobState; 7] = [
        Self::Pending,
        Self::Processing,
        Self::Retrying,
        Self::Completed,
        Self::Failed,
        Self::DeadLetter,
        Self::Cancelled,
    ];

    /// The stored name: `pending`, `dead_letter`, …
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

    /// Pending, processing or retrying: the job may still run, and holds its dedupe key.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Pending | Self::Processing | Self::Retrying)
    }

    /// Completed, failed, dead-lettered or cancelled: nothing more happens unless an operator
    /// retries or requeues it.
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
    /// The job claimed.
    pub job: JobId,
    /// The fencing token of that claim (the job's `lease_seq` then).
    pub token: i64,
}

/// A job as stored: what to run, its state, its lease and its history.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// The job's id.
    pub id: JobId,
    /// Which handler runs it, like `email.send`.
    pub kind: String,
    /// The queue it waits in.
    pub queue: String,
    /// The tenant it belongs to, if any.
    pub org: Option<OrgId>,
    /// The payload as JSON text; sealed values are envelopes (opened for the handler only).
    /// Serialized with every envelope shown as `[sealed]` ([`crate::redact_payload`]).
    #[serde(serialize_with = "serialize_redacted")]
    pub payload: String,
    /// Parts of the payload were sealed at enqueue ([`crate::seal`]).
    pub sealed: bool,
    /// Lower runs first.
    pub priority: i16,
    /// Where it is in its life.
    pub state: JobState,
    /// Not claimed before this time (also the retry time while retrying).
    pub run_at: DateTime<Utc>,
    /// Attempts started so far; during processing, the number of the running attempt.
    pub attempt: u32,
    /// Attempts allowed before it is dead-lettered.
    pub max_attempts: u32,
    /// Held while the job is active; see [`crate::NewJob::dedupe_key`].
    pub dedupe_key: Option<String>,
    /// The fencing token of the latest claim.
    pub lease_seq: i64,
    /// When the current claim's lease runs out, while processing.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The worker holding the lease, while processing.
    pub locked_by: Option<String>,
    /// The latest attempt's error, if it failed.
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When the latest attempt was claimed.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a final state.
    pub finished_at: Option<DateTime<Utc>>,
    /// The W3C trace context of the span that enqueued it (see [`crate::NewJob::trace_context`]):
    /// the worker's span for the job continues that trace.
    pub trace_context: Option<String>,
}

impl Job {
    /// The lease of the current claim, if the job is being processed.
    pub fn lease(&self) -> Option<Lease> {
        (self.state == JobState::Processing).then_some(Lease { job: self.id, token: self.lease_seq })
    }

    /// The payload parsed as JSON (`null` if it is not JSON, which enqueue never lets in).
    pub fn payload_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.payload).unwrap_or(serde_json::Value::Null)
    }

    /// The payload as shown to people and tools: sealed values as `[sealed]`.
    pub fn payload_redacted(&self) -> String {
        crate::redact_payload(&self.payload)
    }
}

fn serialize_redacted<S: serde::Serializer>(payload: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::redact_payload(payload))
}
