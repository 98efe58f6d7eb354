//! A worker's housekeeping loops: lease heartbeats, and the rescue of expired leases
//! (jobs and cron runs) left by workers that died.

use super::metrics::bump;
use super::shared::Shared;
use crate::{JobId, Lease, QueueError, Rescued};
use keel_ids::mask_email;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Jobs rescued per statement; a pass repeats until fewer come back.
const RESCUE_BATCH: u32 = 500;

pub(crate) async fn heartbeats(shared: Arc<Shared>, stop: CancellationToken) {
    let every = shared.settings.heartbeat_every();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        let leases = shared.held_leases();
        if leases.is_empty() {
            continue;
        }
        // Lost means lost under the lease sent: the job may have been claimed again since.
        let sent: std::collections::HashMap<JobId, Lease> = leases.iter().map(|l| (l.job, *l)).collect();
        match shared.store.heartbeat(leases, shared.settings.lease).await {
            Ok(lost) => {
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
                bump(&shared.metrics.db_errors, 1);
                tracing::warn!(event = "heartbeat_failed", error = %mask_email(&e.to_string()),
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
