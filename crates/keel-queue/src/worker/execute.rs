//! Running one claimed job: find its handler, guard size and time, catch panics, and turn
//! the result into an [`Outcome`] (or a reason there is nothing to record).

use super::handler::{JobContext, JobErrorKind};
use super::shared::Shared;
use super::JobStarted;
use crate::clock::plus;
use crate::{Job, Outcome};
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub(crate) enum Done {
    Finish(Outcome),
    /// The shutdown deadline passed mid-run: give the lease back.
    Interrupted,
    /// The lease was lost (rescued elsewhere): nothing of ours may be recorded.
    LeaseLost,
}

/// Runs `job` and says how long the run took; the observer (if any) hears of its start.
pub(crate) async fn execute(shared: &Shared, job: Arc<Job>, cancel: CancellationToken) -> (Done, Duration) {
    if let Some(obs) = &shared.observer {
        let lag = (shared.store.now() - job.run_at).to_std().unwrap_or(Duration::ZERO);
        obs.started(&JobStarted { queue: &job.queue, kind: &job.kind, attempt: job.attempt, lag });
    }
    let span = job_span(&job);
    let began = tokio::time::Instant::now();
    let done = run(shared, job, cancel).instrument(span.clone()).await;
    let (outcome, failed) = match &done {
        Done::Finish(Outcome::Completed) => ("completed", false),
        Done::Finish(Outcome::Retry { .. }) => ("retry", true),
        Done::Finish(Outcome::Failed { .. }) => ("failed", true),
        Done::Finish(Outcome::DeadLetter { .. }) => ("dead_letter", true),
        Done::Interrupted => ("interrupted", false),
        Done::LeaseLost => ("lease_lost", true),
    };
    span.record("job.outcome", outcome);
    if failed {
        span.record("otel.status_code", "error");
    }
    (done, began.elapsed())
}

/// The run's span: a child of the enqueuing span's trace when the job carries its context
/// (see [`crate::NewJob::trace_context`]), so a request and the work it queued are one trace.
fn job_span(job: &Job) -> tracing::Span {
    let span = tracing::info_span!(
        "job",
        otel.name = %job.kind,
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
        job.id = %job.id,
        job.kind = %job.kind,
        job.queue = %job.queue,
        job.attempt = job.attempt,
        job.outcome = tracing::field::Empty,
    );
    if let Some(stored) = &job.trace_context {
        crate::trace::continue_in(&span, stored);
    }
    span
}

async fn run(shared: &Shared, job: Arc<Job>, cancel: CancellationToken) -> Done {
    let Some(reg) = shared.registry.get(&job.kind) else {
        let known: Vec<&str> = shared.registry.kinds().collect();
        return Done::Finish(Outcome::DeadLetter {
            error: format!(
                "unknown job kind {:?}: no handler is registered in this worker (it handles: {}); deploy a worker that \
                 handles it, then run `keel-ops queue requeue-dead --kind {}`",
                job.kind,
                if known.is_empty() { "nothing".to_owned() } else { known.join(", ") },
                job.kind
            ),
        });
    };
    let max = shared.settings.max_payload_bytes;
    if job.payload.len() > max {
        return Done::Finish(Outcome::DeadLetter {
            error: format!(
                "payload is {} bytes, over this worker's {max}-byte limit (KEEL_JOB_MAX_PAYLOAD_BYTES); store large data \
                 elsewhere and pass a reference",
                job.payload.len()
            ),
        });
    }
    // Sealed values are opened here, just before the handler, and live only in its context;
    // a job that cannot be opened (its key rotated away, altered, erased) is dead-lettered
    // with the reason: retrying the same bytes with the same keys cannot help.
    // The opened copy is the handler's alone: the worker's own reference (kept for the
    // completer's log) still holds the sealed bytes.
    let job = if job.sealed {
        match crate::seal::open_payload(shared.store.keyring(), &job.kind, job.id, &job.payload) {
            Ok(opened) => Arc::new(Job { payload: opened, ..(*job).clone() }),
            Err(e) => {
                return Done::Finish(Outcome::DeadLetter { error: format!("cannot open the sealed payload: {e}") })
            }
        }
    } else {
        job
    };
    let attempt = job.attempt;
    let timeout = reg.options.timeout;
    let policy = reg.options.retry;
    let ctx = JobContext { job, cancel: cancel.clone() };
    // A panic is caught and becomes a retryable failure instead of taking the worker down.
    // Dropping the future (timeout, cancel) stops the handler at its next await.
    // A lease lost, or the deadline passed, before the start: the handler does not run at all.
    if cancel.is_cancelled() {
        return if shared.abandon.is_cancelled() { Done::Interrupted } else { Done::LeaseLost };
    }
    let run = AssertUnwindSafe(tokio::time::timeout(timeout, (reg.handler)(ctx))).catch_unwind();
    // The handler first: one that is done at its first poll never registers with the token
    // (a lock taken and given back per job, issue #19). One still running is stopped when the
    // token fires, as before.
    let res = tokio::select! {
        biased;
        r = run => r,
        _ = cancel.cancelled() => {
            return if shared.abandon.is_cancelled() { Done::Interrupted } else { Done::LeaseLost };
        }
    };
    let retry = |error: String, after: Option<std::time::Duration>| Outcome::Retry {
        error,
        at: plus(shared.store.now(), after.unwrap_or_else(|| policy.delay(attempt))),
    };
    Done::Finish(match res {
        Ok(Ok(Ok(()))) => Outcome::Completed,
        Ok(Ok(Err(e))) => match e.kind {
            JobErrorKind::Retryable => retry(e.message, e.retry_after),
            JobErrorKind::Permanent => Outcome::Failed { error: e.message },
            JobErrorKind::Unprocessable => Outcome::DeadLetter { error: e.message },
        },
        Ok(Err(_elapsed)) => {
            retry(format!("timed out after {timeout:?} (the kind's timeout); the run was stopped"), None)
        }
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-text panic".into());
            retry(format!("handler panicked: {msg}"), None)
        }
    })
}
