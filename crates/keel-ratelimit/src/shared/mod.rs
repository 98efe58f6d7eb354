//! `SharedLimiter`: the same GCRA with its state in the database, shared by every instance.
//!
//! One statement per decision: an upsert on the `(policy, key)` row that computes the new TAT
//! and returns it with the decision (see [`sql`]). Time comes from the database clock
//! (`clock_timestamp()` on PostgreSQL), so instances never disagree about it; the statement also
//! takes the time as a parameter, which is how tests drive it.
//!
//! # Contention and outages
//! - A hot key serialises its callers on the row lock. The statement sets `lock_timeout`
//!   (default 50 ms) for itself, so a caller that would wait longer gets
//!   [`SharedError::LockTimeout`] and the layer answers 503 with `Retry-After: 1` and the
//!   `rate-limiter-unavailable` problem type, a different answer from a quota 429. A hot key
//!   under contention always fails closed: it is being hammered, and letting the flood through
//!   is what the limiter exists to prevent.
//! - Everything else that stops a decision (database down, pool exhausted, the overall deadline
//!   of 250 ms passed) follows the policy's [`FailureMode`]: closed (503, the default) or open
//!   (admit, no headers). Either way it is logged at most once a minute per limiter.
//! - On SQLite there are no row locks to wait on: writers take turns on the database lock, and
//!   only the overall deadline bounds the wait.
//!
//! # Pruning
//! Rows whose TAT has passed carry no state. Once a minute (on the first decision after the
//! minute is up) the limiter deletes them in batches of 1,000 in a background task, skipping
//! rows that are locked, so pruning never makes a decision wait.

mod sql;

use crate::metrics::DecisionCounters;
use crate::throttle::LogThrottle;
use crate::{CheckFuture, Decision, FailureMode, LimitKey, Limiter, LimiterMetrics, Outcome, Policy, Quota};
use keel_storage::Db;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;

/// How long a decision may wait for a hot key's row lock.
pub const DEFAULT_LOCK_BUDGET: Duration = Duration::from_millis(50);
/// How long a decision may take in all (pool, network, query).
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(250);
/// How often idle rows are pruned.
pub const DEFAULT_PRUNE_EVERY: Duration = Duration::from_secs(60);
/// `Retry-After` when no decision could be made.
const UNAVAILABLE_RETRY: Duration = Duration::from_secs(1);
const PRUNE_BATCH: i64 = 1_000;
const LOG_INTERVAL_NS: u64 = 60_000_000_000;

/// Why the shared limiter made no decision.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SharedError {
    /// A hot key's row lock was held longer than the lock budget; always fails closed.
    #[error("the key's row stayed locked beyond the {0:?} budget (a hot key under contention)")]
    LockTimeout(Duration),
    /// No decision within the overall deadline (slow database, exhausted pool).
    #[error("no decision within {0:?} (database slow or connection pool exhausted)")]
    Deadline(Duration),
    /// The database answered with an error (its text, for logs).
    #[error("the rate-limit database failed: {0}")]
    Database(String),
    /// The database handle is of a backend this build left out: enable the keel-ratelimit
    /// feature of the same name.
    #[error("keel-ratelimit was built without its `{0}` feature; enable it to use the shared limiter on {0}")]
    BackendNotBuilt(&'static str),
}

impl SharedError {
    fn from_sqlx(e: sqlx::Error, budget: Duration) -> Self {
        if let sqlx::Error::Database(db) = &e {
            // 55P03 lock_not_available (Postgres lock_timeout); 5/517 SQLITE_BUSY(_SNAPSHOT).
            if matches!(db.code().as_deref(), Some("55P03") | Some("5") | Some("517")) {
                return SharedError::LockTimeout(budget);
            }
        }
        SharedError::Database(e.to_string())
    }
}

/// A rate limiter for one policy whose counters live in the database.
pub struct SharedLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    policy: Arc<str>,
    quota: Quota,
    on_outage: FailureMode,
    lock_budget: Duration,
    deadline: Duration,
    prune_every_ns: u64,
    counters: DecisionCounters,
    unavailable: AtomicU64,
    pruned: AtomicU64,
    /// Unix ns when the last prune was started (0: never).
    last_prune: AtomicU64,
    prune_task: Mutex<Option<JoinHandle<()>>>,
    log: LogThrottle,
}

fn unix_ns() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos()).unwrap_or(u64::MAX)
}

impl SharedLimiter {
    /// A shared limiter for `policy` (its quota and failure mode) on `db`.
    pub fn new(db: Db, policy: &Policy) -> Self {
        Self::with_quota(db, Arc::clone(&policy.name), policy.quota).on_outage(policy.on_outage)
    }

    /// A shared limiter named `policy` with `quota`, failing closed (no [`Policy`] needed).
    pub fn with_quota(db: Db, policy: impl Into<Arc<str>>, quota: Quota) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                policy: policy.into(),
                quota,
                on_outage: FailureMode::Closed,
                lock_budget: DEFAULT_LOCK_BUDGET,
                deadline: DEFAULT_DEADLINE,
                prune_every_ns: DEFAULT_PRUNE_EVERY.as_nanos() as u64,
                counters: DecisionCounters::new(),
                unavailable: AtomicU64::new(0),
                pruned: AtomicU64::new(0),
                last_prune: AtomicU64::new(0),
                prune_task: Mutex::new(None),
                log: LogThrottle::new(LOG_INTERVAL_NS),
            }),
        }
    }

    fn configure(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        // Builders run before the limiter is shared, so the Arc is still unique.
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            f(inner);
        }
        self
    }

    /// What to do when the database cannot decide in time (default: fail closed).
    pub fn on_outage(self, mode: FailureMode) -> Self {
        self.configure(|i| i.on_outage = mode)
    }

    /// How long a decision may wait for a row lock (at least 1 ms: `lock_timeout = 0` would
    /// mean "wait forever" to Postgres).
    pub fn lock_budget(self, budget: Duration) -> Self {
        self.configure(|i| i.lock_budget = budget.max(Duration::from_millis(1)))
    }

    /// How long a decision may take in all.
    pub fn deadline(self, deadline: Duration) -> Self {
        self.configure(|i| i.deadline = deadline)
    }

    /// How often idle rows are pruned (zero: after every decision; for tests).
    pub fn prune_every(self, every: Duration) -> Self {
        self.configure(|i| i.prune_every_ns = u64::try_from(every.as_nanos()).unwrap_or(u64::MAX))
    }

    /// The policy name, as in headers, metrics and the table's `policy` column.
    pub fn policy(&self) -> &str {
        &self.inner.policy
    }

    /// The quota every key is held to.
    pub fn quota(&self) -> &Quota {
        &self.inner.quota
    }

    /// Decides one request for `key` at `now` (Unix nanoseconds), or at the database's clock
    /// when `now` is `None`. The raw statement: no deadline, counters, failure mode or pruning.
    pub async fn check_at(&self, key: &LimitKey, now: Option<u64>) -> Result<Decision, SharedError> {
        self.inner.decide(key, now).await
    }

    /// Decides one request for `key` now, by the database clock, applying the deadline and the
    /// policy's failure mode, counting the outcome, and pruning idle rows when due.
    pub async fn check(&self, key: &LimitKey) -> Outcome {
        let inner = &self.inner;
        // A shared decision is a database statement on the request path: its own span in a
        // trace, with the policy and the answer (never the key: it can be an address or an IP).
        let span = tracing::info_span!(
            "ratelimit.check",
            ratelimit.policy = %inner.policy,
            ratelimit.allowed = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let decided = tokio::time::timeout(inner.deadline, inner.decide(key, None));
        let result = match tracing::Instrument::instrument(decided, span.clone()).await {
            Ok(r) => r,
            Err(_) => Err(SharedError::Deadline(inner.deadline)),
        };
        match &result {
            Ok(d) => span.record("ratelimit.allowed", d.is_allowed()),
            Err(_) => span.record("otel.status_code", "error"),
        };
        let outcome = match result {
            Ok(d) => {
                inner.counters.record(d.is_allowed());
                Outcome::Decided(d)
            }
            Err(e) => inner.undecided(e),
        };
        self.maybe_prune();
        outcome
    }

    /// Deletes rows whose bucket is full again at `now` (database clock if `None`), in batches;
    /// returns how many went.
    pub async fn prune(&self, now: Option<u64>) -> Result<u64, SharedError> {
        prune(&self.inner, now).await
    }

    /// Forgets `key`'s state, so its bucket is full again; `true` if there was any. For counts
    /// that an event resets (a success clearing a failure count, an operator's unlock). Bounded
    /// by the same deadline as a decision.
    pub async fn clear(&self, key: &LimitKey) -> Result<bool, SharedError> {
        let inner = &self.inner;
        let key = key.storage_key();
        let run = async {
            match &inner.db {
                Db::Postgres(pool) => sqlx::query(sql::PG_CLEAR)
                    .bind(&*inner.policy)
                    .bind(&key)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected()),
                Db::Sqlite(pool) => sqlx::query(sql::SQLITE_CLEAR)
                    .bind(&*inner.policy)
                    .bind(&key)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected()),
            }
            .map(|n| n > 0)
            .map_err(|e| SharedError::from_sqlx(e, inner.lock_budget))
        };
        tokio::time::timeout(inner.deadline, run).await.unwrap_or(Err(SharedError::Deadline(inner.deadline)))
    }

    /// Waits for a background prune in flight, if any (tests; graceful shutdown).
    pub async fn join_prune(&self) {
        let task = self.inner.prune_task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }

    fn maybe_prune(&self) {
        let inner = &self.inner;
        let now = unix_ns();
        let last = inner.last_prune.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < inner.prune_every_ns {
            return;
        }
        if inner.last_prune.compare_exchange(last, now.max(1), Ordering::AcqRel, Ordering::Relaxed).is_err() {
            return; // another caller started it
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        let task_inner = Arc::clone(inner);
        let task = handle.spawn(async move {
            if let Err(e) = prune(&task_inner, None).await {
                if task_inner.log.allow(unix_ns()) {
                    tracing::warn!(policy = %task_inner.policy, error = %e, "pruning idle rate-limit rows failed; will retry (logged once a minute)");
                }
            }
        });
        let mut slot = inner.prune_task.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(previous) = slot.replace(task) {
            // A previous prune still running is left to finish on its own.
            drop(previous);
        }
    }
}

impl Inner {
    async fn decide(&self, key: &LimitKey, now: Option<u64>) -> Result<Decision, SharedError> {
        let now = now.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let key = key.storage_key();
        let t = self.quota.emission_interval().as_nanos() as i64;
        let tau = t * (i64::from(self.quota.burst()) - 1);
        let budget = self.lock_budget;
        let row: (i64, i64, bool) = match &self.db {
            #[cfg(feature = "postgres")]
            Db::Postgres(pool) => sqlx::query_as(sql::PG_DECIDE)
                .bind(&*self.policy)
                .bind(&key)
                .bind(now)
                .bind(t)
                .bind(tau)
                .bind(format!("{}ms", self.lock_budget.as_millis().max(1)))
                .fetch_one(pool)
                .await
                .map_err(|e| SharedError::from_sqlx(e, budget))?,
            #[cfg(feature = "sqlite")]
            Db::Sqlite(pool) => sqlx::query_as(sql::SQLITE_DECIDE)
                .bind(&*self.policy)
                .bind(&key)
                .bind(now)
                .bind(t)
                .bind(tau)
                .fetch_one(pool)
                .await
                .map_err(|e| SharedError::from_sqlx(e, budget))?,
            #[cfg(not(all(feature = "postgres", feature = "sqlite")))]
            other => return Err(not_built(other)),
        };
        let (tat, decided, allowed) = row;
        let as_u64 = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(Decision::from_state(&self.quota, allowed, as_u64(decided), as_u64(tat)))
    }

    fn undecided(&self, e: SharedError) -> Outcome {
        self.unavailable.fetch_add(1, Ordering::Relaxed);
        let mode = match e {
            SharedError::LockTimeout(_) => FailureMode::Closed,
            _ => self.on_outage,
        };
        if self.log.allow(unix_ns()) {
            tracing::warn!(
                policy = %self.policy,
                error = %e,
                failing = if mode == FailureMode::Closed { "closed (503)" } else { "open (admitted)" },
                "shared rate limiter made no decision (logged once a minute)"
            );
        }
        match mode {
            FailureMode::Closed => Outcome::Unavailable { retry_after: UNAVAILABLE_RETRY },
            FailureMode::Open => Outcome::Unlimited,
        }
    }
}

/// The error for a backend whose feature is off (keel-storage always carries both variants).
#[cfg(not(all(feature = "postgres", feature = "sqlite")))]
fn not_built(db: &Db) -> SharedError {
    SharedError::BackendNotBuilt(db.backend().as_str())
}

async fn prune(inner: &Inner, now: Option<u64>) -> Result<u64, SharedError> {
    let now = now.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    let mut total = 0u64;
    loop {
        let deleted = match &inner.db {
            #[cfg(feature = "postgres")]
            Db::Postgres(pool) => sqlx::query(sql::PG_PRUNE)
                .bind(&*inner.policy)
                .bind(now)
                .bind(PRUNE_BATCH)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
            #[cfg(feature = "sqlite")]
            Db::Sqlite(pool) => sqlx::query(sql::SQLITE_PRUNE)
                .bind(&*inner.policy)
                .bind(now)
                .bind(PRUNE_BATCH)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
            #[cfg(not(all(feature = "postgres", feature = "sqlite")))]
            other => return Err(not_built(other)),
        }
        .map_err(|e| SharedError::from_sqlx(e, inner.lock_budget))?;
        total += deleted;
        inner.pruned.fetch_add(deleted, Ordering::Relaxed);
        if deleted < PRUNE_BATCH as u64 {
            return Ok(total);
        }
    }
}

impl Limiter for SharedLimiter {
    fn policy(&self) -> &str {
        &self.inner.policy
    }

    fn quota(&self) -> &Quota {
        &self.inner.quota
    }

    fn check_key<'a>(&'a self, key: &'a LimitKey) -> CheckFuture<'a> {
        CheckFuture::Pending(Box::pin(self.check(key)))
    }

    fn unix_now(&self) -> Duration {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
    }

    fn metrics(&self) -> LimiterMetrics {
        let (allowed, rejected) = self.inner.counters.totals();
        LimiterMetrics {
            policy: self.inner.policy.to_string(),
            keys: None,
            max_keys: None,
            allowed,
            rejected,
            unavailable: self.inner.unavailable.load(Ordering::Relaxed),
            pruned_idle: self.inner.pruned.load(Ordering::Relaxed),
            evicted_live: 0,
        }
    }
}
