//! Where "now" comes from: the system clock in production, a hand-driven clock in tests.
//!
//! Every time the queue writes (run_at, lease expiry, heartbeats) is taken from one [`Clock`]
//! and truncated to whole milliseconds, the precision SQLite stores, so a value written and
//! read back compares equal on both backends (the cron heartbeat compares-and-sets on it).

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The source of "now" for every time the store writes; inject a [`ManualClock`] in tests.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time, already truncated to milliseconds.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock, truncated to milliseconds: what production uses.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        truncate_ms(Utc::now())
    }
}

/// A clock that moves only when told to; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    /// A clock standing at `start` (truncated to milliseconds).
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(truncate_ms(start))))
    }

    /// Starts at a fixed, round instant so test output is stable.
    pub fn at_epoch_2030() -> Self {
        Self::new(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).single().unwrap_or_default())
    }

    /// Moves the clock forward by `by`, for every clone.
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t = plus(*t, by);
    }

    /// Sets the clock to `at` (backwards too), for every clone.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = truncate_ms(at);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// std to chrono, saturating at chrono's range (about 292 million years).
pub(crate) fn to_chrono(d: Duration) -> ChronoDuration {
    ChronoDuration::from_std(d).unwrap_or(ChronoDuration::MAX)
}

/// `t + d`, truncated to milliseconds and saturating instead of overflowing.
pub(crate) fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    truncate_ms(t.checked_add_signed(to_chrono(d)).unwrap_or(DateTime::<Utc>::MAX_UTC))
}

pub(crate) fn ms_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// `t - d`, saturating at the earliest representable time.
pub(crate) fn minus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    truncate_ms(t.checked_sub_signed(to_chrono(d)).unwrap_or(DateTime::<Utc>::MIN_UTC))
}
