//! Retry timing: exponential backoff with jitter, per job kind.

use std::time::Duration;

/// `delay(n) = min(max_delay, base × 2^(n-1))`, then shortened by a random fraction of up to
/// `jitter` so jobs that failed together do not all retry in the same instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt.
    pub base: Duration,
    /// The longest wait.
    pub max_delay: Duration,
    /// From 0 (no jitter) to 1 (anywhere between zero and the full delay).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// 2 s, 4 s, 8 s … capped at one hour, with 20% jitter: transient provider blips (the
    /// seeds' email sends) are retried within seconds, a longer outage is waited out.
    fn default() -> Self {
        Self { base: Duration::from_secs(2), max_delay: Duration::from_secs(3600), jitter: 0.2 }
    }
}

impl RetryPolicy {
    /// A policy; `max_delay` is raised to at least `base` and `jitter` clamped to `[0, 1]`.
    pub fn new(base: Duration, max_delay: Duration, jitter: f64) -> Self {
        Self { base, max_delay: max_delay.max(base), jitter: jitter.clamp(0.0, 1.0) }
    }

    /// The wait before the attempt after `attempt` (1-based: the attempt that just failed).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, rand::random::<f64>())
    }

    /// [`Self::delay`] with the random draw supplied (`unit` in `[0, 1)`), for tests.
    pub fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(62);
        let raw = self.base.checked_mul(1u32 << exp.min(31)).unwrap_or(self.max_delay);
        let raw = if exp > 31 { self.max_delay } else { raw };
        let capped = raw.min(self.max_delay);
        let cut = self.jitter * unit.clamp(0.0, 1.0);
        capped.mul_f64(1.0 - cut)
    }
}
