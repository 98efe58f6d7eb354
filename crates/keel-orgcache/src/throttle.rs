//! Once-per-period work per org (regenerating derived rows at most every few minutes however
//! often a page polls), on tokio's clock so tests can pause time.

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use keel_ids::OrgId;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;
use tokio::time::Instant;

/// Lets a named job run for an org at most once per `period`, however often it is polled.
pub struct Throttle {
    period: Duration,
    last: DashMap<(OrgId, String), Instant>,
    prune_at: AtomicUsize,
}

impl Throttle {
    /// Lets each (org, job) run at most once per `period`.
    pub fn new(period: Duration) -> Throttle {
        Throttle { period, last: DashMap::new(), prune_at: AtomicUsize::new(1024) }
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// True at most once per period for each (org, name); the caller that gets `true` runs the
    /// job. Concurrent callers race for one `true`.
    pub fn should_run(&self, org: OrgId, name: &str) -> bool {
        let now = Instant::now();
        let run = match self.last.entry((org, name.to_owned())) {
            Entry::Occupied(mut o) => {
                if now.saturating_duration_since(*o.get()) >= self.period {
                    o.insert(now);
                    true
                } else {
                    false
                }
            }
            Entry::Vacant(v) => {
                v.insert(now);
                true
            }
        };
        if run {
            self.prune(now);
        }
        run
    }

    /// Forgets the last run, so the next poll runs again (call it when the job failed).
    pub fn forget(&self, org: OrgId, name: &str) {
        self.last.remove(&(org, name.to_owned()));
    }

    /// Entries older than the period say nothing; drop them once the map has doubled.
    fn prune(&self, now: Instant) {
        let len = self.last.len();
        if len < self.prune_at.load(Relaxed) {
            return;
        }
        self.last.retain(|_, t| now.saturating_duration_since(*t) < self.period);
        self.prune_at.store((self.last.len() * 2).max(1024), Relaxed);
    }

    /// How many (org, job) pairs are remembered.
    pub fn tracked(&self) -> usize {
        self.last.len()
    }
}
