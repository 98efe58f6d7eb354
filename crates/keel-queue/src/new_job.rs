//! What a caller hands to `enqueue`: [`NewJob`], and the typed route to it, [`JobArgs`].

use crate::names::check_name;
use crate::{JobId, Keyring, QueueError, RetryPolicy, Sensitive};
use chrono::{DateTime, Utc};
use keel_ids::OrgId;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The payload limit when none is configured. Jobs carry references, not documents.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Attempts when a kind says nothing: one run and four retries.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// The queue a job goes to when neither it nor its kind names one.
pub const DEFAULT_QUEUE: &str = "default";

/// How jobs of one kind are queued and run. `queue`, `priority` and `max_attempts` are applied
/// at enqueue, by [`NewJob::args`] for typed jobs and by [`crate::Registry::prepare`] (which
/// the [`crate::Dispatcher`] calls) for registered kinds; a bare [`NewJob::new`] knows no kind
/// options. `retry` and `timeout` are applied by the worker. `sensitive` is applied at enqueue
/// too: the store seals what it names (see [`crate::seal`]).
#[derive(Debug, Clone, PartialEq)]
pub struct KindOptions {
    /// The queue its jobs go to (default [`DEFAULT_QUEUE`]).
    pub queue: String,
    /// Lower runs first (default 0).
    pub priority: i16,
    /// Attempts before dead-lettering (default [`DEFAULT_MAX_ATTEMPTS`]).
    pub max_attempts: u32,
    /// Backoff between attempts.
    pub retry: RetryPolicy,
    /// A run longer than this is stopped and counts as a retryable failure.
    pub timeout: Duration,
    /// What of the payload is sealed at enqueue (default: nothing).
    pub sensitive: Option<Sensitive>,
}

impl Default for KindOptions {
    fn default() -> Self {
        Self {
            queue: DEFAULT_QUEUE.to_owned(),
            priority: 0,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(300),
            sensitive: None,
        }
    }
}

impl KindOptions {
    /// Sets [`KindOptions::queue`].
    pub fn queue(mut self, q: &str) -> Self {
        q.clone_into(&mut self.queue);
        self
    }
    /// Sets [`KindOptions::priority`].
    pub fn priority(mut self, p: i16) -> Self {
        self.priority = p;
        self
    }
    /// Sets [`KindOptions::max_attempts`].
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }
    /// Sets [`KindOptions::retry`].
    pub fn retry(mut self, r: RetryPolicy) -> Self {
        self.retry = r;
        self
    }
    /// Sets [`KindOptions::timeout`].
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    /// Seals the whole payload of this kind's jobs.
    pub fn sealed(mut self) -> Self {
        self.sensitive = Some(Sensitive::Payload);
        self
    }
    /// Seals these top-level fields of this kind's payloads (a JSON object); the others stay
    /// readable.
    pub fn sealed_fields(mut self, fields: &[&str]) -> Self {
        self.sensitive = Some(Sensitive::Fields(fields.iter().map(|f| (*f).to_owned()).collect()));
        self
    }
}

/// A typed job: the payload struct names its kind and options.
///
/// ```
/// use keel_queue::{JobArgs, KindOptions, NewJob};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct SendWelcome {
///     user: keel_ids::UserId,
/// }
/// impl JobArgs for SendWelcome {
///     const KIND: &'static str = "welcome.send";
///     fn options() -> KindOptions {
///         KindOptions::default().queue("email").max_attempts(3)
///     }
/// }
///
/// let job = NewJob::args(&SendWelcome { user: keel_ids::UserId::generate() })?;
/// assert_eq!(job.kind(), "welcome.send"); // then: store.enqueue(job).await?
/// # Ok::<(), keel_queue::QueueError>(())
/// ```
pub trait JobArgs: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The job kind, like `welcome.send`: lowercase letters, digits, `.`, `_` and `-`.
    const KIND: &'static str;
    /// The kind's queue, priority, attempts, retry policy and timeout (default: the defaults).
    fn options() -> KindOptions {
        KindOptions::default()
    }
}

/// A job to insert. Built with [`NewJob::new`] (or [`NewJob::args`]) and the setters; checked
/// when enqueued, so a bad value comes back as an error from `enqueue`, naming the field.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub(crate) id: JobId,
    pub(crate) kind: String,
    pub(crate) queue: String,
    pub(crate) org: Option<OrgId>,
    pub(crate) payload: String,
    pub(crate) priority: i16,
    pub(crate) run_at: Option<DateTime<Utc>>,
    pub(crate) max_attempts: u32,
    pub(crate) dedupe_key: Option<String>,
    pub(crate) sensitive: Option<Sensitive>,
    /// The enqueuing span's W3C trace context; captured at enqueue unless set.
    pub(crate) trace_context: Option<String>,
    /// Set once the store has sealed the payload.
    pub(crate) sealed: bool,
    /// Which of queue, priority, max_attempts and sensitivity the caller set, so kind defaults fill only
    /// the rest.
    explicit: Explicit,
    /// Whether this job (this value or any clone of it: they share the id) was handed to an
    /// enqueue before, shared by the clones.
    sent: Arc<AtomicBool>,
    /// Set by [`NewJob::sealed_and_checked`]: it was handed to an enqueue before this one, so
    /// its id may be taken already, even by a job that has since completed (see the
    /// PostgreSQL store's `enqueue_in`).
    pub(crate) resent: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Explicit {
    queue: bool,
    priority: bool,
    max_attempts: bool,
    sensitive: bool,
}

impl NewJob {
    /// A job of `kind` with a payload serialized to JSON, on the default queue.
    pub fn new(kind: &str, payload: &impl Serialize) -> Result<Self, QueueError> {
        let payload = serde_json::to_string(payload)
            .map_err(|e| QueueError::Payload { kind: kind.to_owned(), message: e.to_string() })?;
        Ok(Self::raw(kind, payload))
    }

    /// A job whose payload is JSON text already (the ops CLI's `--payload`); checked here.
    pub fn from_json(kind: &str, payload: &str) -> Result<Self, QueueError> {
        let v: serde_json::Value = serde_json::from_str(payload).map_err(|e| {
            QueueError::invalid("payload", format!("is not valid JSON ({e}); pass an object like '{{\"ms\": 10}}'"))
        })?;
        Self::new(kind, &v)
    }

    /// A typed job with its kind's options (queue, priority, attempts) applied.
    pub fn args<A: JobArgs>(args: &A) -> Result<Self, QueueError> {
        Ok(Self::new(A::KIND, args)?.with_defaults(&A::options()))
    }

    /// Fills queue, priority and max_attempts from a kind's options wherever the caller has
    /// not set them ([`crate::Registry::prepare`] does this for registered kinds).
    pub fn with_defaults(mut self, o: &KindOptions) -> Self {
        if !self.explicit.queue {
            o.queue.clone_into(&mut self.queue);
        }
        if !self.explicit.priority {
            self.priority = o.priority;
        }
        if !self.explicit.max_attempts {
            self.max_attempts = o.max_attempts;
        }
        if !self.explicit.sensitive {
            self.sensitive.clone_from(&o.sensitive);
        }
        self
    }

    fn raw(kind: &str, payload: String) -> Self {
        Self {
            id: JobId::generate(),
            kind: kind.to_owned(),
            queue: DEFAULT_QUEUE.to_owned(),
            org: None,
            payload,
            priority: 0,
            run_at: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            dedupe_key: None,
            sensitive: None,
            trace_context: None,
            sealed: false,
            explicit: Explicit::default(),
            sent: Arc::default(),
            resent: false,
        }
    }

    /// The queue to wait in (default: the kind's, else [`DEFAULT_QUEUE`]).
    pub fn queue(mut self, q: &str) -> Self {
        q.clone_into(&mut self.queue);
        self.explicit.queue = true;
        self
    }
    /// Lower runs first; default 0.
    pub fn priority(mut self, p: i16) -> Self {
        self.priority = p;
        self.explicit.priority = true;
        self
    }
    /// Not before this time (default: now).
    pub fn run_at(mut self, t: DateTime<Utc>) -> Self {
        self.run_at = Some(crate::clock::truncate_ms(t));
        self
    }
    /// Attempts allowed, 1 to 1000 (default: the kind's, else [`DEFAULT_MAX_ATTEMPTS`]).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self.explicit.max_attempts = true;
        self
    }
    /// While a job of this kind (and tenant) holding `key` is pending, processing or retrying,
    /// enqueueing another returns the existing job's id instead of inserting.
    pub fn dedupe_key(mut self, key: &str) -> Self {
        self.dedupe_key = Some(key.to_owned());
        self
    }
    /// Seals the whole payload at enqueue, whatever the kind's options say.
    pub fn sealed(mut self) -> Self {
        self.sensitive = Some(Sensitive::Payload);
        self.explicit.sensitive = true;
        self
    }
    /// Seals these top-level fields at enqueue, whatever the kind's options say.
    pub fn sealed_fields(mut self, fields: &[&str]) -> Self {
        self.sensitive = Some(Sensitive::Fields(fields.iter().map(|f| (*f).to_owned()).collect()));
        self.explicit.sensitive = true;
        self
    }
    /// What will be sealed at enqueue, if anything.
    pub fn sensitive(&self) -> Option<&Sensitive> {
        self.sensitive.as_ref()
    }
    /// The W3C trace context to continue when the job runs: a `traceparent` value, optionally
    /// followed by `;` and a `tracestate` value. Without it, enqueue captures the current span's
    /// context (with the `otel` feature and an OpenTelemetry layer installed), else none.
    pub fn trace_context(mut self, context: &str) -> Self {
        self.trace_context = Some(context.to_owned());
        self
    }
    /// The tenant the job belongs to (scopes its dedupe key and lets tools filter by org).
    pub fn org(mut self, org: OrgId) -> Self {
        self.org = Some(org);
        self
    }

    /// The id the job will have (chosen before insert, so a caller can record it first).
    pub fn id(&self) -> JobId {
        self.id
    }
    /// The job's kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Seals the payload if the job is sensitive (once), then checks it against the limits:
    /// what the store runs before inserting.
    pub(crate) fn sealed_and_checked(
        mut self,
        keyring: Option<&Keyring>,
        max_payload: usize,
    ) -> Result<NewJob, QueueError> {
        if self.trace_context.is_none() {
            self.trace_context = crate::trace::capture();
        }
        if let (Some(what), false) = (&self.sensitive, self.sealed) {
            let ring = keyring.ok_or_else(|| crate::SealError::NoKeyring { kind: self.kind.clone() })?;
            check_name("job kind", &self.kind)?;
            self.payload = crate::seal::seal_payload(ring, &self.kind, self.id, &self.payload, what)?;
            self.sealed = true;
        }
        self.check(max_payload)?;
        self.resent = self.sent.swap(true, Ordering::AcqRel);
        Ok(self)
    }

    /// [`NewJob::sealed_and_checked`] for each job of a bulk enqueue, which must not hold one job
    /// twice: a clone keeps its original's id, and the insert would keep only one of the rows
    /// while the caller counted both.
    pub(crate) fn all_sealed_and_checked(
        jobs: Vec<NewJob>,
        keyring: Option<&Keyring>,
        max_payload: usize,
    ) -> Result<Vec<NewJob>, QueueError> {
        let mut first = std::collections::HashMap::with_capacity(jobs.len());
        for (i, j) in jobs.iter().enumerate() {
            if let Some(earlier) = first.insert(j.id, i) {
                return Err(QueueError::Invalid {
                    field: "jobs",
                    message: format!(
                        "jobs[{i}] has the id of jobs[{earlier}] ({}): a cloned NewJob keeps its id; build each \
                         job with NewJob::new. Nothing was enqueued",
                        j.id
                    ),
                });
            }
        }
        jobs.into_iter().map(|j| j.sealed_and_checked(keyring, max_payload)).collect()
    }

    pub(crate) fn check(&self, max_payload: usize) -> Result<(), QueueError> {
        check_name("job kind", &self.kind)?;
        check_name("queue name", &self.queue)?;
        if !(1..=1000).contains(&self.max_attempts) {
            return Err(QueueError::invalid(
                "max_attempts",
                format!("must be from 1 to 1000, got {}", self.max_attempts),
            ));
        }
        if let Some(k) = &self.dedupe_key {
            if k.is_empty() || k.len() > 255 {
                return Err(QueueError::invalid("dedupe key", "must be 1 to 255 bytes"));
            }
        }
        if self.trace_context.as_ref().is_some_and(|c| c.len() > crate::trace::MAX_TRACE_CONTEXT_BYTES) {
            return Err(QueueError::invalid(
                "trace context",
                format!(
                    "must be at most {} bytes (a traceparent and a tracestate)",
                    crate::trace::MAX_TRACE_CONTEXT_BYTES
                ),
            ));
        }
        if self.payload.len() > max_payload {
            return Err(QueueError::PayloadTooLarge {
                kind: self.kind.clone(),
                size: self.payload.len(),
                max: max_payload,
            });
        }
        Ok(())
    }
}

/// What `enqueue` did: inserted a new job, or found an active job with the same dedupe key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "id", rename_all = "snake_case")]
pub enum Enqueued {
    /// A new job was inserted with this id.
    Created(JobId),
    /// An active job with the same kind, tenant and dedupe key exists; this is its id.
    Duplicate(JobId),
}

impl Enqueued {
    /// The id of the job that will run: the new one or the existing one.
    pub fn id(self) -> JobId {
        match self {
            Self::Created(id) | Self::Duplicate(id) => id,
        }
    }
    /// True when nothing was inserted.
    pub fn is_duplicate(self) -> bool {
        matches!(self, Self::Duplicate(_))
    }
}
