//! Batched finishes: handlers hand their outcome to one completer task, which writes
//! whatever has accumulated in one transaction ("natural batching": no added delay when
//! idle, large batches under load).
//!
//! What a crash can re-run: a job whose handler returned but whose finish was still in this
//! buffer (at most one flush, typically milliseconds of work) is rescued after its lease
//! and runs again. Its first run's finish can never be accepted later: the rescue changed
//! the fencing token.

use super::metrics::bump;
use super::shared::{HandSlot, Shared};
use super::{JobFinished, JobOutcome};
use crate::{Finish, Finished, Job, JobState, Lease, Outcome};
use keel_ids::mask_email;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Finishes written per transaction at most.
const MAX_BATCH: usize = 1_000;

pub(crate) struct Pending {
    pub(crate) finish: Finish,
    /// The job as claimed (its kind, queue and attempt for the log and the observer; shared
    /// with the run, not copied).
    pub(crate) job: Arc<Job>,
    /// How long the run took (for the observer).
    pub(crate) ran_for: Duration,
    /// Returned to the claim loop once this finish is written.
    pub(crate) slot: Option<HandSlot>,
}

/// What one batch of finishes did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    /// Jobs claimed.
    pub claimed: u64,
    /// Finished `completed`.
    pub completed: u64,
    /// Finished `retrying` (to run again).
    pub retried: u64,
    /// Finished `failed` (permanent error).
    pub failed: u64,
    /// Finished `dead_letter`.
    pub dead_lettered: u64,
    /// Finishes refused because the lease had moved on (the job was rescued meanwhile).
    pub stale: u64,
    /// Finishes that could not be written (database down past the deadline); those jobs are
    /// rescued after their lease and run again.
    pub lost: u64,
    /// Ticks skipped (switch or pause) before this run, reported by it.
    pub skipped_ticks: u64,
}

pub(crate) async fn run(
    shared: std::sync::Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Pending>,
    hard_stop: CancellationToken,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        flush(&shared, batch, &hard_stop).await;
    }
}

/// Writes a batch, retrying while the database is unavailable (until `hard_stop`).
pub(crate) async fn flush(shared: &Shared, batch: Vec<Pending>, hard_stop: &CancellationToken) -> BatchReport {
    let mut report = BatchReport::default();
    let finishes: Vec<Finish> = batch.iter().map(|p| p.finish.clone()).collect();
    let leases: Vec<Lease> = batch.iter().map(|p| p.finish.lease).collect();
    shared.mark_finishing(leases.iter().copied());
    let mut delay = Duration::from_millis(100);
    loop {
        match shared.store.finish(finishes.clone()).await {
            Ok(results) => {
                for (p, r) in batch.iter().zip(results) {
                    record(shared, p, r, &mut report);
                }
                shared.drop_held(leases);
                HandSlot::release_all(batch.into_iter().filter_map(|p| p.slot));
                return report;
            }
            Err(e) if e.is_unavailable() && !hard_stop.is_cancelled() => {
                bump(&shared.metrics.db_errors, 1);
                tracing::warn!(event = "finish_retry", count = batch.len(), error = %mask_email(&e.to_string()),
                    retry_in_ms = delay.as_millis() as u64, "cannot record job outcomes yet; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = hard_stop.cancelled() => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                report.lost += batch.len() as u64;
                tracing::error!(event = "finish_lost", count = batch.len(), error = %mask_email(&e.to_string()),
                    "job outcomes not recorded; these jobs will be rescued after their lease and run again");
                shared.drop_held(leases);
                HandSlot::release_all(batch.into_iter().filter_map(|p| p.slot));
                return report;
            }
        }
    }
}

fn record(shared: &Shared, p: &Pending, r: Finished, report: &mut BatchReport) {
    let m = &shared.metrics;
    let id = p.finish.lease.job;
    let (kind, attempt) = (p.job.kind.as_str(), p.job.attempt);
    let outcome = match (r, &p.finish.outcome) {
        (Finished::Stale, _) => {
            report.stale += 1;
            bump(&m.stale_finishes, 1);
            tracing::warn!(event = "stale_finish", job_id = %id, kind, attempt,
                "outcome discarded: the lease was lost and the job was rescued; it runs again elsewhere");
            return;
        }
        (Finished::Accepted(JobState::Completed), _) => {
            report.completed += 1;
            bump(&m.completed, 1);
            tracing::debug!(event = "completed", job_id = %id, kind, attempt);
            JobOutcome::Completed
        }
        (Finished::Accepted(JobState::Retrying), Outcome::Retry { error, at }) => {
            report.retried += 1;
            bump(&m.retried, 1);
            tracing::info!(event = "retrying", job_id = %id, kind, attempt, next_run_at = %at.to_rfc3339(),
                error = %mask_email(error));
            JobOutcome::Retried
        }
        (Finished::Accepted(JobState::Failed), o) => {
            report.failed += 1;
            bump(&m.failed, 1);
            tracing::warn!(event = "failed", job_id = %id, kind, attempt, error = %mask_email(error_of(o)));
            JobOutcome::Failed
        }
        (Finished::Accepted(state), o) => {
            report.dead_lettered += 1;
            bump(&m.dead_lettered, 1);
            tracing::warn!(event = "dead_lettered", job_id = %id, kind, attempt, state = %state,
                error = %mask_email(error_of(o)));
            JobOutcome::DeadLettered
        }
    };
    if let Some(obs) = &shared.observer {
        let seen = JobFinished { queue: &p.job.queue, kind, attempt, outcome, duration: p.ran_for };
        // The host's code, run inside the completer: a panic unwinding out of it would end the
        // completer, and with it the recording of every later job's outcome.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| obs.finished(&seen))).is_err() {
            tracing::error!(event = "observer_panicked", job_id = %id, kind,
                "the job observer panicked on a finished job; the outcome is recorded all the same");
        }
    }
}

fn error_of(o: &Outcome) -> &str {
    match o {
        Outcome::Retry { error, .. } | Outcome::Failed { error } | Outcome::DeadLetter { error } => error,
        Outcome::Completed => "",
    }
}
