//! A worker's housekeeping loops: lease heartbeats, and the rescue of expired leases
//! (jobs and cron runs) left by workers that died.

use super::metrics::bump;
use super::shared::Shared;
use crate::{JobId, Lease, QueueError, Rescued};
use keel_ids::mask_email;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Jobs rescued per statement; a pass repeats until fewer come back.
const RESCUE_BATCH: u32 = 500;

/// The wait before the next heartbeat after `failures` failed ones in a row: the usual
/// interval (a third of the lease) after a success; after a failure a tenth of it (at least
/// 100 ms), doubling with each failure in a row up to the interval. At the usual interval two
/// failures in a row left the third try at the lease's very end, racing the rescue of every job
/// held (which then ran twice); now a database blip of a few seconds costs a few seconds.
pub(crate) fn next_heartbeat(every: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return every;
    }
    let first = (every / 10).max(Duration::from_millis(100)).min(every);
    first.saturating_mul(2u32.saturating_pow(failures - 1)).min(every)
}

pub(crate) async fn heartbeats(shared: Arc<Shared>, stop: CancellationToken) {
    let every = shared.settings.heartbeat_every();
    let mut failures = 0u32;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(next_heartbeat(every, failures)) => {}
            _ = stop.cancelled() => return,
        }
        let leases = shared.held_leases();
        if leases.is_empty() {
            failures = 0;
            continue;
        }
        // Lost means lost under the lease sent: the job may have been claimed again since.
        let sent: std::collections::HashMap<JobId, Lease> = leases.iter().map(|l| (l.job, *l)).collect();
        match shared.store.heartbeat(leases, shared.settings.lease).await {
            Ok(lost) => {
                failures = 0;
                let mut map = shared.in_flight.lock().unwrap_or_else(|p| p.into_inner());
                for id in lost {
                    let Some(f) = map.get(&id).filter(|f| sent.get(&id) == Some(&f.lease)) else { continue };
                    if f.finishing {
                        continue; // finished meanwhile; the completer reports the result
                    }
                    f.cancel.cancel();
                    map.remove(&id);
                    bump(&shared.metrics.lease_lost, 1);
                    tracing::warn!(event = "lease_lost", job_id = %id,
                        "lease lost (rescued by another worker after missed heartbeats); abandoning this run");
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                bump(&shared.metrics.db_errors, 1);
                tracing::warn!(event = "heartbeat_failed", error = %mask_email(&e.to_string()),
                    retry_in_ms = next_heartbeat(every, failures).as_millis() as u64,
                    "cannot extend job leases; jobs may be rescued if this lasts past the lease");
            }
        }
    }
}

/// One rescue pass: every job whose lease expired goes back to `retrying` (or
/// `dead_letter` on its last attempt), reported as `stuck_processing`; stale cron runs are
/// marked `stuck`.
pub(crate) async fn rescue_once(shared: &Shared) -> Result<Vec<Rescued>, QueueError> {
    let mut all = Vec::new();
    loop {
        let batch = shared.store.rescue_expired(RESCUE_BATCH).await?;
        let n = batch.len();
        for r in &batch {
            bump(&shared.metrics.stuck_processing, 1);
            tracing::warn!(event = "stuck_processing", job_id = %r.id, kind = %r.kind, queue = %r.queue,
                attempt = r.attempt, worker = r.worker.as_deref().unwrap_or("unknown"), next_state = %r.state,
                "job was claimed but never finalised before its lease expired");
        }
        all.extend(batch);
        if n < RESCUE_BATCH as usize {
            break;
        }
    }
    for run in shared.store.cron_recover_stale().await? {
        bump(&shared.metrics.cron_stuck, 1);
        tracing::warn!(event = "cron_run_stuck", task = %run.task, run_id = %run.id, worker = %run.worker,
            "scheduled run's worker stopped heartbeating; marked stuck");
    }
    Ok(all)
}

pub(crate) async fn rescues(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        if let Err(e) = rescue_once(&shared).await {
            bump(&shared.metrics.db_errors, 1);
            tracing::warn!(event = "rescue_failed", error = %mask_email(&e.to_string()), "rescue pass failed; retrying later");
        }
        tokio::select! {
            _ = tokio::time::sleep(shared.settings.rescue_interval) => {}
            _ = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::next_heartbeat;
    use std::time::Duration;

    /// After a failure the next heartbeat comes at a tenth of the interval, doubling with each
    /// failure in a row up to the interval; a success goes back to the interval.
    #[test]
    fn a_failed_heartbeat_is_retried_soon_then_less_often() {
        let every = Duration::from_secs(10);
        let waits: Vec<u64> =
            [0, 1, 2, 3, 4, 5, u32::MAX].iter().map(|&f| next_heartbeat(every, f).as_millis() as u64).collect();
        assert_eq!(waits, [10_000, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
        let short = Duration::from_millis(100);
        assert_eq!(next_heartbeat(short, 1), short, "never under 100 ms, never over the interval");
        assert_eq!(next_heartbeat(Duration::from_millis(500), 1), Duration::from_millis(100));
    }
}
