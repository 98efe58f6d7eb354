//! One claim loop per queue: check the switches (no I/O), wait for a free slot, claim a
//! batch, start each job, and sleep until a wakeup or the poll interval when idle.

use super::completer::Pending;
use super::execute::{execute, Done};
use super::metrics::bump;
use super::shared::{HandSlot, LoopAlive, Shared};
use super::QueueSettings;
use crate::{Claim, Finish, Job, PauseReason};
use keel_ids::mask_email;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Backoff while the database is unreachable: doubles from 100 ms, capped at 30 s.
pub(crate) const MAX_OUTAGE_BACKOFF: Duration = Duration::from_secs(30);

pub(crate) fn claim_for(shared: &Shared, q: &QueueSettings) -> Claim {
    Claim {
        queue: q.queue.clone(),
        task: q.task.clone(),
        limit: q.batch_size,
        lease: shared.settings.lease,
        worker: shared.settings.worker_id.clone(),
    }
}

/// Logs and counts a skipped tick; `skipped` is the count since the task's last run.
/// Every skip is counted; a claim loop ticks every poll interval, so while it stays paused
/// only its first skip and every 60th after reach the info level (the rest are debug).
pub(crate) fn log_skip(shared: &Shared, task: &str, reason: &str, skipped: u64) {
    shared.metrics.skipped_tick(task);
    if skipped == 1 || skipped % 60 == 0 {
        tracing::info!(
            event = "tick_skipped",
            task,
            reason,
            skipped_ticks = skipped,
            "paused: no work claimed this tick"
        );
    } else {
        tracing::debug!(
            event = "tick_skipped",
            task,
            reason,
            skipped_ticks = skipped,
            "paused: no work claimed this tick"
        );
    }
}

pub(crate) fn pause_text(p: &PauseReason) -> String {
    match p {
        PauseReason::Queue(q) => format!("queue {q} paused (keel-ops queue pause)"),
        PauseReason::Task(t) => format!("task paused (keel-ops cron pause {t})"),
    }
}

/// `claimed_batch`: debug normally, info when it is the first run after skipped ticks so
/// the skip count reaches the default log level.
pub(crate) fn log_claimed(q: &QueueSettings, count: usize, skipped: u64) {
    if skipped > 0 {
        tracing::info!(event = "claimed_batch", queue = %q.queue, task = %q.task, count, skipped_ticks = skipped);
    } else {
        tracing::debug!(event = "claimed_batch", queue = %q.queue, task = %q.task, count, skipped_ticks = 0u64);
    }
}

async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = cancel.cancelled() => false,
    }
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    q: QueueSettings,
    done_tx: mpsc::UnboundedSender<Pending>,
    tracker: TaskTracker,
    cancel: CancellationToken,
) {
    let _alive = LoopAlive::new(&shared.loops_running);
    let slots = Arc::new(Semaphore::new(q.concurrency as usize));
    // Jobs in hand (claimed, not yet durably finished): running ones, one claimed batch
    // waiting for run slots, and finishes waiting for the completer. Bounding it keeps a
    // fast loop from claiming more than the database absorbs, so leases never expire in a
    // backlog of unwritten finishes.
    let hand = Arc::new(Semaphore::new((q.concurrency + 2 * q.batch_size) as usize));
    let notify = shared.store.wakeup().notify();
    let mut backoff = Duration::from_millis(100);
    while !cancel.is_cancelled() {
        // Incident switches first: a switched-off tick touches no database connection.
        if let Some(var) = shared.switches.current().task_disabled_by(&q.task) {
            let skipped = shared.skip(&q.task);
            log_skip(&shared, &q.task, &format!("{var}=true"), skipped);
            if !sleep_or_cancel(shared.poll, &cancel).await {
                break;
            }
            continue;
        }
        let first = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = cancel.cancelled() => break,
        };
        tokio::select! {
            p = hand.acquire_many(q.batch_size) => match p { Ok(p) => p.forget(), Err(_) => break },
            _ = cancel.cancelled() => break,
        }
        // Armed before claiming, so a wakeup that lands while we claim is not lost.
        let woken = notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let jobs = match shared.store.claim(claim_for(&shared, &q)).await {
            Ok(j) => {
                backoff = Duration::from_millis(100);
                j
            }
            Err(e) => {
                drop(first);
                hand.add_permits(q.batch_size as usize);
                bump(&shared.metrics.db_errors, 1);
                tracing::warn!(event = "queue_unavailable", queue = %q.queue, error = %mask_email(&e.to_string()),
                    retry_in_ms = backoff.as_millis() as u64, "cannot claim jobs; backing off");
                if !sleep_or_cancel(backoff, &cancel).await {
                    break;
                }
                backoff = (backoff * 2).min(MAX_OUTAGE_BACKOFF);
                continue;
            }
        };
        hand.add_permits(q.batch_size as usize - jobs.len().min(q.batch_size as usize));
        if jobs.is_empty() {
            drop(first);
            match shared.store.pause_reason(q.queue.clone(), q.task.clone()).await {
                Ok(Some(p)) => {
                    let skipped = shared.skip(&q.task);
                    log_skip(&shared, &q.task, &pause_text(&p), skipped);
                }
                _ => {
                    bump(&shared.metrics.empty_runs, 1);
                    tracing::debug!(event = "empty_run", queue = %q.queue, task = %q.task);
                }
            }
            tokio::select! {
                _ = &mut woken => {}
                _ = tokio::time::sleep(shared.poll) => {}
                _ = cancel.cancelled() => break,
            }
            continue;
        }
        bump(&shared.metrics.claimed, jobs.len() as u64);
        let skipped = shared.take_skipped(&q.task);
        log_claimed(&q, jobs.len(), skipped);
        // Held (and so heartbeated) from the moment of the claim, not from their start.
        let held: Vec<(Job, CancellationToken, HandSlot)> = jobs
            .into_iter()
            .filter_map(|j| {
                let lease = j.lease()?;
                Some((j, shared.hold(lease), HandSlot(hand.clone())))
            })
            .collect();
        let mut permit = Some(first);
        let mut held = held.into_iter();
        while let Some((job, token, slot)) = held.next() {
            let p = match permit.take() {
                Some(p) => p,
                None => tokio::select! {
                    p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                    _ = cancel.cancelled() => {
                        // Claimed but never started: give them back for another worker now.
                        for (j, _, _) in std::iter::once((job, token, slot)).chain(held.by_ref()) {
                            if let Some(l) = j.lease() { shared.give_back(l); }
                        }
                        break;
                    }
                },
            };
            start(&shared, job, token, slot, p, &done_tx, &tracker);
        }
    }
}

fn start(
    shared: &Arc<Shared>,
    job: Job,
    token: CancellationToken,
    slot: HandSlot,
    permit: tokio::sync::OwnedSemaphorePermit,
    done_tx: &mpsc::UnboundedSender<Pending>,
    tracker: &TaskTracker,
) {
    let Some(lease) = job.lease() else { return };
    let shared = shared.clone();
    let tx = done_tx.clone();
    tracker.spawn(async move {
        let (kind, queue, attempt) = (job.kind.clone(), job.queue.clone(), job.attempt);
        let (done, ran_for) = execute(&shared, job, token).await;
        drop(permit);
        match done {
            Done::Finish(outcome) => {
                shared.mark_finishing(lease.job);
                let finish = Finish { lease, outcome };
                let pending = Pending { finish, kind, queue, attempt, ran_for, _slot: Some(slot) };
                if tx.send(pending).is_err() {
                    // Completer gone (cannot happen before shutdown ends); the lease expires.
                    shared.drop_held([lease.job]);
                }
            }
            Done::Interrupted => shared.give_back(lease),
            Done::LeaseLost => shared.drop_held([lease.job]),
        }
    });
}
