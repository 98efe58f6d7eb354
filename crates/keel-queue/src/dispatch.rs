//! [`Dispatcher`]: enqueue, or, when `<KIND>_QUEUE_DISABLED=true`, run the job right here in
//! the enqueuing process: the per-kind rollback switch from the seeds ("set
//! COMMERCIAL_PROPOSAL_SEND_QUEUE_DISABLED=true to roll this path back to synchronous delivery").

use crate::clock::plus;
use crate::switches::kind_switch;
use crate::worker::{JobContext, JobError, Registry};
use crate::{Enqueued, Job, JobArgs, JobState, NewJob, QueueError, Store, SwitchBoard};
use keel_ids::mask_email;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What [`Dispatcher::dispatch`] did with a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatched {
    /// Enqueued as usual (or found as a duplicate).
    Queued(Enqueued),
    /// The kind's queue is switched off; its handler ran here and succeeded.
    RanInline,
}

/// Why a dispatch failed.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// Enqueueing failed (or the job was invalid).
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The job ran inline (its queue is switched off) and its handler failed; nothing was
    /// queued, so the caller decides whether to report or retry.
    #[error("job kind {kind} ran inline ({switch}=true) and failed: {error}")]
    Inline {
        /// The job's kind.
        kind: String,
        /// The switch that made it run inline (`<KIND>_QUEUE_DISABLED`).
        switch: String,
        /// The handler's error.
        error: JobError,
    },
}

/// Enqueues jobs, honouring the per-kind rollback switch: when `<KIND>_QUEUE_DISABLED=true`,
/// the kind's registered handler runs in the calling process instead (see the module docs).
#[derive(Clone)]
pub struct Dispatcher {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    switches: SwitchBoard,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").field("registry", &self.registry).finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher enqueueing into `store`, running `registry`'s handlers when switched inline.
    pub fn new(store: Arc<dyn Store>, registry: impl Into<Arc<Registry>>, switches: SwitchBoard) -> Self {
        Self { store, registry: registry.into(), switches }
    }

    /// [`Dispatcher::dispatch`] of a typed job.
    pub async fn dispatch_args<A: JobArgs>(&self, args: &A) -> Result<Dispatched, DispatchError> {
        self.dispatch(NewJob::args(args)?).await
    }

    /// Enqueues `job` with its registered kind's defaults ([`Registry::prepare`]), or runs
    /// it inline when its kind's queue is switched off.
    pub async fn dispatch(&self, job: NewJob) -> Result<Dispatched, DispatchError> {
        let job = self.registry.prepare(job);
        if !self.switches.current().kind_runs_inline(&job.kind) {
            return Ok(Dispatched::Queued(self.store.enqueue(job).await?));
        }
        let switch = kind_switch(&job.kind);
        let Some(reg) = self.registry.get(&job.kind) else {
            tracing::warn!(event = "inline_unavailable", kind = %job.kind, switch = %switch,
                "queue switched off for this kind but no handler is registered in this process; queued instead");
            return Ok(Dispatched::Queued(self.store.enqueue(job).await?));
        };
        job.check(usize::MAX)?;
        let now = self.store.now();
        let row = Job {
            id: job.id,
            kind: job.kind.clone(),
            queue: job.queue.clone(),
            org: job.org,
            payload: job.payload.clone(),
            // Run here, never stored: the handler gets the payload as given.
            sealed: false,
            priority: job.priority,
            state: JobState::Processing,
            run_at: job.run_at.unwrap_or(now),
            attempt: 1,
            max_attempts: 1,
            dedupe_key: job.dedupe_key.clone(),
            lease_seq: 0,
            lease_expires_at: Some(plus(now, reg.options.timeout)),
            locked_by: Some("inline".into()),
            last_error: None,
            created_at: now,
            updated_at: now,
            started_at: Some(now),
            finished_at: None,
            // Run inline, inside the caller's span: nothing to carry across.
            trace_context: None,
        };
        let ctx = JobContext { job: Arc::new(row), cancel: CancellationToken::new() };
        let res = match tokio::time::timeout(reg.options.timeout, (reg.handler)(ctx)).await {
            Ok(r) => r,
            Err(_) => Err(JobError::retryable(format!("timed out after {:?}", reg.options.timeout))),
        };
        match res {
            Ok(()) => {
                tracing::info!(event = "ran_inline", kind = %job.kind, job_id = %job.id, switch = %switch);
                Ok(Dispatched::RanInline)
            }
            Err(error) => {
                tracing::warn!(event = "inline_failed", kind = %job.kind, job_id = %job.id, switch = %switch,
                    error = %mask_email(&error.message));
                Err(DispatchError::Inline { kind: job.kind, switch, error })
            }
        }
    }
}
