//! `Policy`: a named quota, where its counters live and what it counts, built by the user.

use crate::{KeyedLimiter, LimitKey, Quota, DEFAULT_MAX_KEYS};
use std::sync::Arc;

/// Where a policy's counters live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// In this process: no I/O per decision, but each instance counts separately, so N instances
    /// admit up to N times the quota. Right for floors whose job is to stop floods cheaply.
    InProcess,
    /// In the database, shared by every instance: one statement per decision. Needs the
    /// `postgres` or `sqlite` feature to build (`Policy::limiter`).
    Shared,
}

/// What a shared policy does when the database cannot decide in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// Refuse with 503 and `Retry-After: 1` (the default: a limiter exists to protect something).
    Closed,
    /// Admit the request unlimited, and log.
    Open,
}

/// What a policy counts requests against. Informational for the code that builds the layer's
/// key extractor; the limiter itself counts whatever [`LimitKey`] it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// The client network ([`LimitKey::ip`]).
    ClientIp,
    /// The authenticated user, else the client network when there is no usable session.
    UserOrClientIp,
    /// The normalised email address in the request ([`LimitKey::email`]).
    Email,
}

/// One named rate-limit policy: a quota, the backend that counts it and what it is keyed by.
///
/// ```
/// use keel_ratelimit::{Backend, KeyKind, Policy};
///
/// let login = Policy::new("login", "5/1m,burst=5".parse()?).with_key(KeyKind::Email);
/// assert_eq!(login.backend, Backend::InProcess);
/// let limiter = login.in_process_limiter();
/// assert_eq!(limiter.policy(), "login");
/// # Ok::<(), keel_ratelimit::QuotaError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The name in headers, metrics and the shared limiter's rows.
    pub name: Arc<str>,
    /// How many requests, over what period, in bursts of how many.
    pub quota: Quota,
    /// Where the counters live.
    pub backend: Backend,
    /// What requests are counted against.
    pub key: KeyKind,
    /// Only consulted by the shared backend.
    pub on_outage: FailureMode,
    /// Only consulted by the in-process backend: the hard cap on tracked keys.
    pub max_keys: usize,
}

impl Policy {
    /// An in-process policy keyed by client IP, failing closed, with [`DEFAULT_MAX_KEYS`].
    pub fn new(name: impl Into<Arc<str>>, quota: Quota) -> Self {
        Self {
            name: name.into(),
            quota,
            backend: Backend::InProcess,
            key: KeyKind::ClientIp,
            on_outage: FailureMode::Closed,
            max_keys: DEFAULT_MAX_KEYS,
        }
    }

    /// The same policy counted in `backend`.
    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// The same policy keyed by `key`.
    pub fn with_key(mut self, key: KeyKind) -> Self {
        self.key = key;
        self
    }

    /// The same policy with another failure mode (shared backend only).
    pub fn with_on_outage(mut self, mode: FailureMode) -> Self {
        self.on_outage = mode;
        self
    }

    /// The same policy with another key cap (in-process backend only).
    pub fn with_max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// An in-process limiter for this policy on the real clock, whatever its backend.
    pub fn in_process_limiter(&self) -> KeyedLimiter<LimitKey> {
        KeyedLimiter::new(Arc::clone(&self.name), self.quota).max_keys(self.max_keys)
    }

    /// The limiter this policy declares: in process, or shared through `db`.
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    pub fn limiter(&self, db: &keel_storage::Db) -> Arc<dyn crate::Limiter> {
        match self.backend {
            Backend::InProcess => Arc::new(self.in_process_limiter()),
            Backend::Shared => Arc::new(crate::SharedLimiter::new(db.clone(), self)),
        }
    }
}
