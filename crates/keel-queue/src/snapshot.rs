//! The queue's health at a glance: counts per state and kind, and how long work has waited.

use crate::JobState;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// Jobs per state. Serialized with the state names as keys, the contract of
/// `keel-ops queue stats --json`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StateCounts {
    /// Jobs `pending`.
    pub pending: u64,
    /// Jobs `processing`.
    pub processing: u64,
    /// Jobs `retrying`.
    pub retrying: u64,
    /// Jobs `completed` (until pruned).
    pub completed: u64,
    /// Jobs `failed`.
    pub failed: u64,
    /// Jobs `dead_letter`.
    pub dead_letter: u64,
    /// Jobs `cancelled` (until pruned).
    pub cancelled: u64,
}

impl StateCounts {
    /// The count of one state.
    pub fn get(&self, s: JobState) -> u64 {
        match s {
            JobState::Pending => self.pending,
            JobState::Processing => self.processing,
            JobState::Retrying => self.retrying,
            JobState::Completed => self.completed,
            JobState::Failed => self.failed,
            JobState::DeadLetter => self.dead_letter,
            JobState::Cancelled => self.cancelled,
        }
    }

    pub(crate) fn add(&mut self, s: JobState, n: u64) {
        let slot = match s {
            JobState::Pending => &mut self.pending,
            JobState::Processing => &mut self.processing,
            JobState::Retrying => &mut self.retrying,
            JobState::Completed => &mut self.completed,
            JobState::Failed => &mut self.failed,
            JobState::DeadLetter => &mut self.dead_letter,
            JobState::Cancelled => &mut self.cancelled,
        };
        *slot += n;
    }

    /// Jobs in every state together.
    pub fn total(&self) -> u64 {
        JobState::ALL.iter().map(|s| self.get(*s)).sum()
    }
}

/// Counts and ages of the whole queue at one instant ([`crate::JobStore::snapshot`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueSnapshot {
    /// When it was taken (the store's clock).
    pub taken_at: DateTime<Utc>,
    /// Jobs per state, every kind together.
    #[serde(flatten)]
    pub counts: StateCounts,
    /// Seconds the longest-waiting runnable job (pending, or retrying with its retry time
    /// reached) has been due; 0 when nothing is waiting.
    pub oldest_pending_age_s: f64,
    /// Jobs still `processing` whose lease has run out: their worker died or hung, and the
    /// next rescue pass will report them as `stuck_processing`.
    pub expired_leases: u64,
    /// Jobs per state, per kind.
    pub by_kind: BTreeMap<String, StateCounts>,
    /// Queues paused in the database.
    pub paused_queues: Vec<String>,
}

impl QueueSnapshot {
    pub(crate) fn build(
        taken_at: DateTime<Utc>,
        rows: Vec<(String, JobState, u64)>,
        oldest_due: Option<DateTime<Utc>>,
        expired_leases: u64,
        paused_queues: Vec<String>,
    ) -> Self {
        let mut counts = StateCounts::default();
        let mut by_kind: BTreeMap<String, StateCounts> = BTreeMap::new();
        for (kind, state, n) in rows {
            counts.add(state, n);
            by_kind.entry(kind).or_default().add(state, n);
        }
        let oldest_pending_age_s =
            oldest_due.map(|t| ((taken_at - t).num_milliseconds().max(0) as f64) / 1000.0).unwrap_or(0.0);
        Self { taken_at, counts, oldest_pending_age_s, expired_leases, by_kind, paused_queues }
    }
}
