//! The per-account sign-in throttle: policy `sign_in_failures`, a shared (database) GCRA keyed
//! by the normalised address being signed in to, whatever the client address, on every
//! instance alike.
//!
//! Every attempt spends one unit before the password is checked, atomically in the one
//! statement of the shared limiter: checking first and counting after a failure would let a
//! burst of parallel guesses all pass the check before any of them is counted. A success then
//! clears the key, so only failures accumulate. An unknown address runs the very same statements
//! as a known one with a wrong password (spend, look up, verify against a dummy hash), so the
//! throttle says nothing about which accounts exist. A password reset and `keel-ops user
//! unlock` clear the key too: a stranger who throttles someone's account cannot lock them out
//! for longer than it takes to reset the password.

use keel_ids::Email;
use keel_ratelimit::{Decision, LimitKey, Limiter, LimiterMetrics, Outcome, Policy, SharedError, SharedLimiter};
use keel_storage::Db;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What an attempt may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Go ahead; one unit is spent (the decision says how many remain).
    Allowed(Decision),
    /// The limiter could not decide and the policy fails open: go ahead, nothing counted.
    Uncounted,
    /// Too many failures for this account: refuse (429) until `retry_after`.
    Throttled { retry_after: Duration },
    /// The limiter could not decide and the policy fails closed: 503 after `retry_after`.
    Unavailable { retry_after: Duration },
}

/// Failed sign-ins per account, shared through the database.
pub struct SignInThrottle {
    limiter: SharedLimiter,
    lockouts: AtomicU64,
}

impl SignInThrottle {
    /// The throttle of `policy` (normally `sign_in_failures`) on `db`.
    pub fn new(db: &Db, policy: &Policy) -> Self {
        Self { limiter: SharedLimiter::new(db.clone(), policy), lockouts: AtomicU64::new(0) }
    }

    fn key(email: &Email) -> LimitKey {
        LimitKey::email(email.as_str())
    }

    /// Spends one attempt of `email`'s allowance.
    pub async fn attempt(&self, email: &Email) -> Attempt {
        match self.limiter.check(&Self::key(email)).await {
            Outcome::Decided(d) if d.is_allowed() => Attempt::Allowed(d),
            Outcome::Decided(d) => Attempt::Throttled { retry_after: d.retry_after() },
            Outcome::Unavailable { retry_after } => Attempt::Unavailable { retry_after },
            Outcome::Unlimited => Attempt::Uncounted,
        }
    }

    /// Records that the attempt failed (wrong password or unknown account). When it used the
    /// account's last unit, the account is now locked out: logged (address masked) and counted.
    pub fn failed(&self, email: &Email, attempt: &Attempt) {
        if let Attempt::Allowed(d) = attempt {
            if d.remaining() == 0 {
                self.lockouts.fetch_add(1, Ordering::Relaxed);
                let next = d.next_unit_after().as_secs().max(1);
                tracing::warn!(
                    email = %email,
                    policy = self.limiter.policy(),
                    next_attempt_in_s = next,
                    "sign-in locked out after too many failures for this account"
                );
            }
        }
    }

    /// Forgets `email`'s failures (a success, a completed reset, an operator's unlock); `true`
    /// if there were any.
    pub async fn clear(&self, email: &Email) -> Result<bool, SharedError> {
        self.limiter.clear(&Self::key(email)).await
    }

    /// Lockouts since start (attempts that used an account's last unit).
    pub fn lockouts(&self) -> u64 {
        self.lockouts.load(Ordering::Relaxed)
    }

    /// The limiter's counters, for the rate-limit metric families.
    pub fn metrics(&self) -> LimiterMetrics {
        self.limiter.metrics()
    }
}
