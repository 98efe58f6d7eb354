//! Logging at most once per interval, so a flood of identical failures writes one line, not one
//! per request.

use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) struct LogThrottle {
    /// Clock reading (ns) of the last line written, plus one; 0 means never.
    last: AtomicU64,
    interval_ns: u64,
}

impl LogThrottle {
    pub(crate) const fn new(interval_ns: u64) -> Self {
        Self { last: AtomicU64::new(0), interval_ns }
    }

    /// Whether a line may be written at `now`; if so, the next one waits a full interval.
    pub(crate) fn allow(&self, now: u64) -> bool {
        let stamp = now.saturating_add(1);
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && stamp.saturating_sub(last) < self.interval_ns {
            return false;
        }
        self.last.compare_exchange(last, stamp, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}
