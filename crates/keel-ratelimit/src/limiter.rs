//! `Limiter`: the one interface the HTTP layer needs, met by the in-process and shared limiters.

use crate::{Clock, Decision, KeyedLimiter, LimitKey, LimiterMetrics, Quota};
use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// What a limiter answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A quota decision (allowed or not).
    Decided(Decision),
    /// No decision could be made in time (the shared limiter's database was slow, locked or down)
    /// and the policy fails closed. Distinct from a quota rejection: the client did nothing wrong
    /// and should retry after `retry_after` (503, not 429).
    Unavailable {
        /// How long the client should wait before trying again.
        retry_after: Duration,
    },
    /// No decision could be made in time and the policy fails open: admit the request, with no
    /// rate-limit headers (there is no count to report).
    Unlimited,
}

/// A check in flight. In-process limiters answer immediately without allocating; the shared
/// limiter's answer is a boxed future.
pub enum CheckFuture<'a> {
    /// Already decided; taken on the first poll.
    Ready(Option<Outcome>),
    /// Decided when the future completes.
    Pending(Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>),
}

impl Future for CheckFuture<'_> {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        match self.get_mut() {
            // Polling again after completion is a caller bug; answering "unavailable" fails
            // closed instead of panicking.
            CheckFuture::Ready(o) => {
                Poll::Ready(o.take().unwrap_or(Outcome::Unavailable { retry_after: Duration::from_secs(1) }))
            }
            CheckFuture::Pending(f) => f.as_mut().poll(cx),
        }
    }
}

/// A rate limiter for one policy, as the HTTP layer sees it.
pub trait Limiter: Send + Sync + 'static {
    /// The policy name, as it appears in headers and metrics.
    fn policy(&self) -> &str;
    /// The quota, as advertised in `RateLimit-Policy`.
    fn quota(&self) -> &Quota;
    /// Decides one request for `key` now.
    fn check_key<'a>(&'a self, key: &'a LimitKey) -> CheckFuture<'a>;
    /// Wall-clock time as the limiter sees it, for `X-RateLimit-Reset`.
    fn unix_now(&self) -> Duration;
    /// A snapshot of this limiter's counters.
    fn metrics(&self) -> LimiterMetrics;
}

impl<C, S> Limiter for KeyedLimiter<LimitKey, C, S>
where
    C: Clock,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    fn policy(&self) -> &str {
        KeyedLimiter::policy(self)
    }

    fn quota(&self) -> &Quota {
        KeyedLimiter::quota(self)
    }

    fn check_key<'a>(&'a self, key: &'a LimitKey) -> CheckFuture<'a> {
        CheckFuture::Ready(Some(Outcome::Decided(self.check(key))))
    }

    fn unix_now(&self) -> Duration {
        self.clock().unix_now()
    }

    fn metrics(&self) -> LimiterMetrics {
        KeyedLimiter::metrics(self)
    }
}
