//! Time sources: a monotonic clock for decisions, wall-clock time only for header timestamps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where a limiter gets the time.
///
/// Decisions use [`Clock::now`], a monotonic count of nanoseconds from an origin the clock
/// chooses (wall time can jump backwards, which would hand out free requests or lock clients
/// out). [`Clock::unix_now`] is read only to stamp `X-RateLimit-Reset` on responses.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic nanoseconds since this clock's origin; never decreases.
    fn now(&self) -> u64;
    /// Time since the Unix epoch, for headers that carry absolute timestamps.
    fn unix_now(&self) -> Duration;
}

/// The real clock: `std::time::Instant` measured from the moment the clock was created.
///
/// `Instant` is the OS monotonic clock (`CLOCK_MONOTONIC` on Linux), which is consistent across
/// cores, unlike the TSC-based clock governor uses by default (governor#299).
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock starting now.
    pub fn new() -> Self {
        Self { origin: Instant::now() }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> u64 {
        // u64 nanoseconds last 584 years from the origin; saturate rather than wrap past that.
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn unix_now(&self) -> Duration {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}

/// A clock that moves only when told to; clones share the same time.
///
/// Public so that other crates' tests (the API's end-to-end limiter checks) can drive a limiter
/// deterministically. Its wall clock is `unix_origin + now`, so header timestamps are exact too.
#[derive(Debug, Clone)]
pub struct FakeClock {
    nanos: Arc<AtomicU64>,
    unix_origin: Duration,
}

/// The fake clock's default wall-clock origin: 2025-01-01T00:00:00Z.
pub const FAKE_UNIX_ORIGIN: Duration = Duration::from_secs(1_735_689_600);

impl FakeClock {
    /// A clock at monotonic time zero whose wall clock reads [`FAKE_UNIX_ORIGIN`].
    pub fn new() -> Self {
        Self::with_unix_origin(FAKE_UNIX_ORIGIN)
    }

    /// A clock at monotonic time zero whose wall clock reads `unix_origin` since the epoch.
    pub fn with_unix_origin(unix_origin: Duration) -> Self {
        Self { nanos: Arc::new(AtomicU64::new(0)), unix_origin }
    }

    /// Moves time forward; saturates at `u64::MAX` nanoseconds.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // fetch_update cannot fail here: the closure always returns Some.
        let _ = self.nanos.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.saturating_add(by)));
    }

    /// Sets the monotonic time. Going backwards is refused (a monotonic clock never does);
    /// returns whether the time was set.
    pub fn set(&self, nanos: u64) -> bool {
        self.nanos.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (nanos >= n).then_some(nanos)).is_ok()
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for FakeClock {
    #[inline]
    fn now(&self) -> u64 {
        self.nanos.load(Ordering::Acquire)
    }

    fn unix_now(&self) -> Duration {
        self.unix_origin + Duration::from_nanos(self.now())
    }
}

impl<C: Clock> Clock for Arc<C> {
    #[inline]
    fn now(&self) -> u64 {
        (**self).now()
    }

    fn unix_now(&self) -> Duration {
        (**self).unix_now()
    }
}
