//! The GCRA step shared by every backend, and the `Decision` it yields.
//!
//! State per key is one number, the theoretical arrival time (TAT). A request at `now` conforms
//! iff `tat <= now + tau`; if it does, the new TAT is `max(tat, now) + T`. A rejection leaves the
//! TAT alone, so a flood of rejected requests costs nothing and changes nothing. The SQL in the
//! shared limiter is this same arithmetic on the same integers, which is what lets the property
//! test demand identical decisions from both.

use crate::Quota;
use std::time::Duration;

/// One GCRA step: `Some(new_tat)` if a request at `now` conforms, `None` if it does not.
/// A key never seen before has `tat = 0` (any time in the past is equivalent: a full bucket).
#[inline]
pub(crate) fn step(tat: u64, now: u64, emission_ns: u64, tau_ns: u64) -> Option<u64> {
    if tat > now.saturating_add(tau_ns) {
        None
    } else {
        Some(tat.max(now).saturating_add(emission_ns))
    }
}

/// The outcome of one check, with everything the response headers need.
///
/// The derived quantities are computed on demand, so the hot path pays for none of the divisions
/// unless a caller asks (the HTTP layer does; a benchmark loop does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    allowed: bool,
    now: u64,
    /// The key's TAT after this decision (unchanged on a rejection).
    tat: u64,
    emission_ns: u64,
    tau_ns: u64,
    burst: u32,
}

impl Decision {
    /// Evaluates one request at `now` against a key whose stored TAT is `tat` (`None` if the key
    /// has no state). The returned decision's [`Decision::tat`] is the value to store.
    pub fn evaluate(quota: &Quota, tat: Option<u64>, now: u64) -> Decision {
        let before = tat.unwrap_or(0);
        match step(before, now, quota.emission_ns(), quota.tau_ns()) {
            Some(next) => Self::from_state(quota, true, now, next),
            None => Self::from_state(quota, false, now, before),
        }
    }

    /// Rebuilds a decision from a backend's answer: whether it admitted the request, the time it
    /// decided at, and the key's TAT afterwards.
    #[inline]
    pub(crate) fn from_state(quota: &Quota, allowed: bool, now: u64, tat: u64) -> Decision {
        Decision { allowed, now, tat, emission_ns: quota.emission_ns(), tau_ns: quota.tau_ns(), burst: quota.burst() }
    }

    /// Whether the request conforms (and was counted).
    #[inline]
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// The bucket size: the most requests admissible back to back (`X-RateLimit-Limit`).
    pub fn limit(&self) -> u32 {
        self.burst
    }

    /// How many more requests would be admitted right now, after this one.
    pub fn remaining(&self) -> u32 {
        if !self.allowed {
            return 0;
        }
        let horizon = self.now.saturating_add(self.tau_ns);
        if self.tat > horizon {
            return 0;
        }
        let n = (horizon - self.tat) / self.emission_ns + 1;
        u32::try_from(n).unwrap_or(u32::MAX).min(self.burst)
    }

    /// How long until a request would be admitted; zero when this one was.
    pub fn retry_after(&self) -> Duration {
        if self.allowed {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.tat.saturating_sub(self.tau_ns).saturating_sub(self.now))
    }

    /// How long until the bucket is full again (`remaining == limit`), i.e. until this key has no
    /// state worth keeping. `X-RateLimit-Reset` is now plus this.
    pub fn reset_after(&self) -> Duration {
        Duration::from_nanos(self.tat.saturating_sub(self.now))
    }

    /// How long until at least one more request becomes admissible than now (the `t` parameter of
    /// the draft-10 `RateLimit` field: "seconds until additional quota is made available"). Zero
    /// when the bucket is already full; equal to [`Decision::retry_after`] on a rejection.
    pub fn next_unit_after(&self) -> Duration {
        let r = self.tat.saturating_sub(self.now);
        if r == 0 {
            return Duration::ZERO;
        }
        let rem = r % self.emission_ns;
        Duration::from_nanos(if rem == 0 { self.emission_ns } else { rem })
    }

    /// The key's TAT after this decision, in the limiter clock's nanoseconds.
    pub fn tat(&self) -> u64 {
        self.tat
    }

    /// The time the decision was made at, in the limiter clock's nanoseconds.
    pub fn decided_at(&self) -> u64 {
        self.now
    }
}
