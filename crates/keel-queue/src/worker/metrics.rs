//! Counters a worker keeps for telemetry and health: lock-free, read as a snapshot.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A worker's live counters; read them with [`QueueMetrics::snapshot`].
#[derive(Debug, Default)]
pub struct QueueMetrics {
    pub(crate) claimed: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) stuck_processing: AtomicU64,
    pub(crate) lease_lost: AtomicU64,
    pub(crate) stale_finishes: AtomicU64,
    pub(crate) released: AtomicU64,
    pub(crate) db_errors: AtomicU64,
    pub(crate) empty_runs: AtomicU64,
    pub(crate) cron_runs: AtomicU64,
    pub(crate) cron_stuck: AtomicU64,
    skipped_ticks: Mutex<BTreeMap<String, u64>>,
}

/// A point-in-time copy of [`QueueMetrics`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    /// Jobs claimed.
    pub claimed: u64,
    /// Jobs completed.
    pub completed: u64,
    /// Attempts that failed and will run again.
    pub retried: u64,
    /// Jobs failed permanently.
    pub failed: u64,
    /// Jobs dead-lettered.
    pub dead_lettered: u64,
    /// Jobs found with an expired lease (their worker died or hung); never counted as
    /// handler failures or dead-letter work.
    pub stuck_processing: u64,
    /// Running jobs abandoned because a heartbeat found their lease taken over.
    pub lease_lost: u64,
    /// Finishes refused because the lease had moved on.
    pub stale_finishes: u64,
    /// Leases given back at shutdown.
    pub released: u64,
    /// Database errors met while running (retried, never fatal).
    pub db_errors: u64,
    /// Claims that found nothing to run.
    pub empty_runs: u64,
    /// Scheduled-task runs.
    pub cron_runs: u64,
    /// Scheduled-task runs found stuck (their worker stopped heartbeating).
    pub cron_stuck: u64,
    /// Ticks skipped by an incident switch or a pause, per task.
    pub skipped_ticks: BTreeMap<String, u64>,
}

pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl QueueMetrics {
    pub(crate) fn skipped_tick(&self, task: &str) {
        *self.skipped_ticks.lock().unwrap_or_else(|p| p.into_inner()).entry(task.to_owned()).or_default() += 1;
    }

    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            claimed: g(&self.claimed),
            completed: g(&self.completed),
            retried: g(&self.retried),
            failed: g(&self.failed),
            dead_lettered: g(&self.dead_lettered),
            stuck_processing: g(&self.stuck_processing),
            lease_lost: g(&self.lease_lost),
            stale_finishes: g(&self.stale_finishes),
            released: g(&self.released),
            db_errors: g(&self.db_errors),
            empty_runs: g(&self.empty_runs),
            cron_runs: g(&self.cron_runs),
            cron_stuck: g(&self.cron_stuck),
            skipped_ticks: self.skipped_ticks.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}
