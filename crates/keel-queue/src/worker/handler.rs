//! Handlers: what runs a job of each kind, registered by kind with a typed payload.

use crate::names::check_name;
use crate::{Job, JobArgs, KindOptions, NewJob, QueueError};
use futures::future::BoxFuture;
use keel_ids::OrgId;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How a handler failed, which decides what happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobErrorKind {
    /// Try again after the kind's backoff (or `retry_after`), until attempts run out.
    Retryable,
    /// Retrying cannot help (a 4xx from a provider, a deleted target): the job is `failed`.
    Permanent,
    /// The job itself is malformed: dead-lettered at once.
    Unprocessable,
}

/// A handler's error. Any `std::error::Error` converts into a retryable one, so handlers
/// can use `?`; say `permanent` or `unprocessable` when retrying is pointless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    /// What happens next.
    pub kind: JobErrorKind,
    /// Recorded as the job's `last_error` (email addresses masked in logs).
    pub message: String,
    /// The earliest retry, overriding the backoff.
    pub retry_after: Option<Duration>,
}

impl JobError {
    /// Try again after the backoff.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self { kind: JobErrorKind::Retryable, message: message.into(), retry_after: None }
    }
    /// Give up: the job is `failed`.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { kind: JobErrorKind::Permanent, message: message.into(), retry_after: None }
    }
    /// The job is malformed: dead-letter it.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self { kind: JobErrorKind::Unprocessable, message: message.into(), retry_after: None }
    }
    /// Retry no sooner than `d` (a provider's Retry-After), instead of the computed backoff.
    pub fn retry_after(mut self, d: Duration) -> Self {
        self.retry_after = Some(d);
        self
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for JobError {
    fn from(e: E) -> Self {
        Self::retryable(e.to_string())
    }
}

/// What a handler gets besides its payload.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The job as claimed.
    pub job: Arc<Job>,
    /// Cancelled when the worker gives up on this attempt (shutdown deadline passed, or the
    /// lease was lost); long handlers should stop at the next safe point.
    pub cancel: CancellationToken,
}

impl JobContext {
    /// This attempt's number, from 1.
    pub fn attempt(&self) -> u32 {
        self.job.attempt
    }
    /// The job's tenant, if any.
    pub fn org(&self) -> Option<OrgId> {
        self.job.org
    }
    /// True on the last allowed attempt: a place to give up cleanly or alert.
    pub fn is_last_attempt(&self) -> bool {
        self.job.attempt >= self.job.max_attempts
    }
}

pub(crate) type ErasedHandler = Arc<dyn Fn(JobContext) -> BoxFuture<'static, Result<(), JobError>> + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Registered {
    pub(crate) options: KindOptions,
    pub(crate) handler: ErasedHandler,
}

/// Handlers by kind. Build one per process; the worker and the inline dispatcher share it.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<String, Registered>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("kinds", &self.kinds.keys().collect::<Vec<_>>()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a typed handler: the payload is decoded into `A` before `f` runs; a payload
    /// that does not decode dead-letters the job with the decoder's message.
    pub fn register<A, F, Fut>(&mut self, f: F) -> Result<&mut Self, QueueError>
    where
        A: JobArgs,
        F: Fn(A, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        let f = Arc::new(f);
        let handler: ErasedHandler = Arc::new(move |ctx: JobContext| {
            let f = f.clone();
            Box::pin(async move {
                let args: A = serde_json::from_str(&ctx.job.payload).map_err(|e| {
                    JobError::unprocessable(format!("payload does not match job kind {}: {e}", A::KIND))
                })?;
                f(args, ctx).await
            })
        });
        self.insert(A::KIND, A::options(), handler)
    }

    /// Registers a handler that takes the payload as untyped JSON.
    pub fn register_json<F, Fut>(&mut self, kind: &str, options: KindOptions, f: F) -> Result<&mut Self, QueueError>
    where
        F: Fn(serde_json::Value, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        let f = Arc::new(f);
        let owned_kind = kind.to_owned();
        let handler: ErasedHandler = Arc::new(move |ctx: JobContext| {
            let f = f.clone();
            let kind = owned_kind.clone();
            Box::pin(async move {
                let v: serde_json::Value = serde_json::from_str(&ctx.job.payload)
                    .map_err(|e| JobError::unprocessable(format!("payload of job kind {kind} is not JSON: {e}")))?;
                f(v, ctx).await
            })
        });
        self.insert(kind, options, handler)
    }

    fn insert(&mut self, kind: &str, options: KindOptions, handler: ErasedHandler) -> Result<&mut Self, QueueError> {
        check_name("job kind", kind)?;
        check_name("queue name", &options.queue)?;
        if self.kinds.contains_key(kind) {
            return Err(QueueError::invalid(
                "job kind",
                format!("{kind:?} is registered twice; register each kind once"),
            ));
        }
        self.kinds.insert(kind.to_owned(), Registered { options, handler });
        Ok(self)
    }

    pub(crate) fn get(&self, kind: &str) -> Option<&Registered> {
        self.kinds.get(kind)
    }

    /// The registered kinds, sorted.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.kinds.keys().map(String::as_str)
    }

    /// A registered kind's options.
    pub fn options(&self, kind: &str) -> Option<&KindOptions> {
        self.kinds.get(kind).map(|r| &r.options)
    }

    /// Applies the registered kind's queue, priority and attempts to whatever `job` has not
    /// set itself. Use it wherever jobs of registered kinds are enqueued by name (an ops CLI,
    /// an API handler), so `webhook.deliver` lands on the queue its handler was registered
    /// for. Unregistered kinds pass through unchanged.
    pub fn prepare(&self, job: NewJob) -> NewJob {
        match self.options(job.kind()) {
            Some(o) => job.with_defaults(o),
            None => job,
        }
    }
}
