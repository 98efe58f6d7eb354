//! Unit tests, one file per concept.

mod cidr;
mod client_ip;
mod gcra;
mod keyed;
mod policy;
mod quota;
#[cfg(any(feature = "tower", feature = "postgres", feature = "sqlite"))]
mod throttle;

use crate::{FakeClock, KeyedLimiter, Quota};
use std::time::Duration;

pub(crate) const SEC: u64 = 1_000_000_000;

pub(crate) fn q(s: &str) -> Quota {
    s.parse().unwrap()
}

pub(crate) fn limiter(spec: &str) -> (KeyedLimiter<u64, FakeClock>, FakeClock) {
    let clock = FakeClock::new();
    (KeyedLimiter::with_clock("test", q(spec), clock.clone()), clock)
}

pub(crate) fn ns(n: u64) -> Duration {
    Duration::from_nanos(n)
}
