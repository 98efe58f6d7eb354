//! Ticking scheduled tasks. Each task has its own loop, so a long run of one never delays
//! another. A tick checks the incident switches first (no I/O); only then does it open a
//! connection to take the task's slot and start a run.

use super::{ScheduledTask, TaskContext};
use crate::store::{CronBegin, CronOutcome, CronRun, CronRunState, CronStart};
use crate::worker::shared::Shared;
use crate::worker::{bump_counter, log_skip};
use crate::{PauseReason, QueueError};
use chrono::{DateTime, Utc};
use keel_ids::mask_email;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// What one tick of a task did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "tick", rename_all = "snake_case")]
pub enum CronTick {
    /// An incident switch is on; no connection was opened.
    Switched {
        /// The switch variable that is on.
        var: String,
    },
    /// The task's next slot has not come yet.
    NotDue {
        /// When it is due.
        next_run_at: DateTime<Utc>,
    },
    /// Another run of the task holds a current lease.
    AlreadyRunning {
        /// That run's id.
        run: Uuid,
        /// The worker running it.
        worker: String,
    },
    /// Paused in the database (`cron pause`); a `skipped_paused` run was recorded.
    Paused {
        /// The pause's name: the task's own, or `all`.
        by: String,
    },
    /// A run happened; `run` is its final log row. `lease_lost`: another worker marked it
    /// stuck meanwhile, so its outcome was not recorded.
    Ran {
        /// The run's final execution-log row.
        run: CronRun,
        /// True when the run's lease was lost before it finished.
        lease_lost: bool,
    },
}

pub(crate) async fn tick(
    shared: &Shared,
    task: &dyn ScheduledTask,
    cancel: &CancellationToken,
) -> Result<CronTick, QueueError> {
    let name = task.name();
    if let Some(var) = shared.switches.current().task_disabled_by(name) {
        let n = shared.skip(name);
        log_skip(shared, name, &format!("{var}=true"), n);
        return Ok(CronTick::Switched { var });
    }
    let now = shared.store.now();
    let begun = shared
        .store
        .cron_begin(CronBegin {
            task: name.to_owned(),
            worker: shared.settings.worker_id.clone(),
            lease: task.lease(),
            first_due: task.schedule().first_due(now),
            next_due: task.schedule().next_after(now),
            skipped_ticks: shared.skipped(name),
        })
        .await?;
    for run in &begun.stuck {
        bump_counter(&shared.metrics.cron_stuck);
        tracing::warn!(event = "cron_run_stuck", task = %run.task, run_id = %run.id, worker = %run.worker,
            "previous run's worker stopped heartbeating; marked stuck");
    }
    match begun.start {
        CronStart::NotDue { next_run_at } => Ok(CronTick::NotDue { next_run_at }),
        CronStart::AlreadyRunning { run, worker } => {
            tracing::debug!(event = "cron_already_running", task = name, run_id = %run, worker = %worker);
            Ok(CronTick::AlreadyRunning { run, worker })
        }
        CronStart::Paused { by } => {
            let n = shared.skip(name);
            log_skip(shared, name, &crate::worker::pause_text(&PauseReason::Task(by.clone())), n);
            Ok(CronTick::Paused { by })
        }
        CronStart::Started(run) => {
            shared.take_skipped(name);
            let (run, lease_lost) = execute(shared, task, run, cancel).await;
            Ok(CronTick::Ran { run, lease_lost })
        }
    }
}

async fn execute(
    shared: &Shared,
    task: &dyn ScheduledTask,
    run: CronRun,
    cancel: &CancellationToken,
) -> (CronRun, bool) {
    let lease = task.lease();
    let run_cancel = cancel.child_token();
    let current = Arc::new(Mutex::new(run.clone()));
    let lost = Arc::new(AtomicBool::new(false));
    let hb_stop = CancellationToken::new();
    let hb = {
        let (store, current, lost, hb_stop, run_cancel) =
            (shared.store.clone(), current.clone(), lost.clone(), hb_stop.clone(), run_cancel.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep((lease / 3).max(Duration::from_millis(100))) => {}
                    _ = hb_stop.cancelled() => return,
                }
                let r = current.lock().unwrap_or_else(|p| p.into_inner()).clone();
                match store.cron_heartbeat(r.clone(), lease).await {
                    Ok(Some(next)) => *current.lock().unwrap_or_else(|p| p.into_inner()) = next,
                    Ok(None) => {
                        lost.store(true, Ordering::SeqCst);
                        run_cancel.cancel();
                        tracing::warn!(event = "cron_lease_lost", task = %r.task, run_id = %r.id,
                            "run was marked stuck by another worker; stopping it");
                        return;
                    }
                    Err(e) => tracing::warn!(event = "cron_heartbeat_failed", task = %r.task,
                        error = %mask_email(&e.to_string())),
                }
            }
        })
    };
    let started = std::time::Instant::now();
    let ctx =
        TaskContext { store: shared.store.clone(), cancel: run_cancel, worker: shared.settings.worker_id.clone() };
    // Its own task, so a panicking task body is a failed run, not a dead scheduler.
    // One span per run (a root: scheduled work continues no request), with its outcome.
    let span = tracing::info_span!(
        "cron.run",
        otel.name = %format_args!("cron {}", run.task),
        cron.task = %run.task,
        cron.outcome = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let res = tokio::spawn(tracing::Instrument::instrument(task.run(ctx), span.clone())).await;
    hb_stop.cancel();
    let _ = hb.await;
    let (outcome, items, error) = match res {
        Ok(Ok(0)) => (CronOutcome::Empty, 0, None),
        Ok(Ok(n)) => (CronOutcome::Ok, n, None),
        Ok(Err(e)) => (CronOutcome::Failed, 0, Some(e.0)),
        Err(j) if j.is_panic() => (CronOutcome::Failed, 0, Some("task panicked".to_owned())),
        Err(_) => (CronOutcome::Failed, 0, Some("task was cancelled".to_owned())),
    };
    span.record("cron.outcome", outcome.as_str());
    if error.is_some() {
        span.record("otel.status_code", "error");
    }
    let mut last = current.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let recorded = if lost.load(Ordering::SeqCst) {
        false
    } else {
        match shared.store.cron_finish(last.clone(), outcome, items, error.clone()).await {
            Ok(ok) => ok,
            Err(e) => {
                tracing::warn!(event = "cron_finish_failed", task = %last.task, error = %mask_email(&e.to_string()),
                    "run outcome not recorded; the run will be marked stuck when its lease expires");
                false
            }
        }
    };
    bump_counter(&shared.metrics.cron_runs);
    last.state = CronRunState::Finished;
    last.outcome = Some(outcome);
    last.items = items;
    last.error = error.clone();
    last.finished_at = Some(shared.store.now());
    let masked = error.as_deref().map(mask_email).unwrap_or_default();
    let ms = started.elapsed().as_millis() as u64;
    if outcome == CronOutcome::Failed {
        tracing::warn!(event = "cron_run", task = %last.task, run_id = %last.id, outcome = %outcome, items,
            skipped_ticks = last.skipped_ticks, duration_ms = ms, recorded, error = %masked);
    } else {
        tracing::info!(event = "cron_run", task = %last.task, run_id = %last.id, outcome = %outcome, items,
            skipped_ticks = last.skipped_ticks, duration_ms = ms, recorded);
    }
    (last, !recorded)
}

/// One loop per task until `cancel`.
pub(crate) async fn run(shared: Arc<Shared>, tasks: Vec<Arc<dyn ScheduledTask>>, cancel: CancellationToken) {
    let loops: Vec<_> = tasks.into_iter().map(|t| tokio::spawn(task_loop(shared.clone(), t, cancel.clone()))).collect();
    for l in loops {
        let _ = l.await;
    }
}

/// Longest sleep between checks, so a wall-clock jump is noticed within a minute.
const MAX_SLEEP: Duration = Duration::from_secs(60);

async fn task_loop(shared: Arc<Shared>, task: Arc<dyn ScheduledTask>, cancel: CancellationToken) {
    // The due time last learned (from the database, or computed while switched off), so a
    // task that is not due costs neither a connection nor a log line.
    let mut known_due: Option<DateTime<Utc>> = None;
    let mut backoff = Duration::from_millis(500);
    loop {
        let now = shared.store.now();
        let wait = match known_due {
            Some(due) if due > now => (due - now).to_std().unwrap_or(MAX_SLEEP).min(MAX_SLEEP),
            _ => Duration::ZERO,
        };
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => continue,
                _ = cancel.cancelled() => return,
            }
        }
        let pause = match tick(&shared, task.as_ref(), &cancel).await {
            Ok(CronTick::Switched { .. }) => {
                // One skipped tick per slot while switched off.
                known_due = Some(task.schedule().next_after(now));
                shared.settings.cron_tick
            }
            Ok(CronTick::NotDue { next_run_at }) => {
                known_due = Some(next_run_at);
                shared.settings.cron_tick
            }
            Ok(_) => {
                known_due = None;
                backoff = Duration::from_millis(500);
                shared.settings.cron_tick
            }
            Err(e) => {
                crate::worker::bump_counter(&shared.metrics.db_errors);
                tracing::warn!(event = "cron_tick_failed", task = task.name(), error = %mask_email(&e.to_string()),
                    retry_in_ms = backoff.as_millis() as u64);
                let b = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                b
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = cancel.cancelled() => return,
        }
    }
}
