//! Per-policy decision counters: one stripe per thread, so counting is a plain load and store
//! on a cache line no other thread writes.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Threads beyond this many at once share an overflow stripe (with atomic adds).
const STRIPES: usize = 64;
const OVERFLOW: usize = usize::MAX;

/// One cache line (two on CPUs with adjacent-line prefetch) per stripe.
#[repr(align(128))]
#[derive(Default)]
struct Stripe {
    allowed: AtomicU64,
    rejected: AtomicU64,
}

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);
static FREE_SLOTS: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// This thread's stripe index, owned exclusively until the thread exits and hands it back.
struct Slot(usize);

impl Slot {
    fn acquire() -> Self {
        let reused = FREE_SLOTS.lock().map(|mut f| f.pop()).unwrap_or(None);
        let idx = reused.unwrap_or_else(|| NEXT_SLOT.fetch_add(1, Ordering::Relaxed));
        Slot(if idx < STRIPES { idx } else { OVERFLOW })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The mutex hand-off orders this thread's last counts before the next owner's first.
        if self.0 != OVERFLOW {
            if let Ok(mut free) = FREE_SLOTS.lock() {
                free.push(self.0);
            }
        }
    }
}

thread_local! {
    static SLOT: Slot = Slot::acquire();
}

/// Allowed and rejected totals for one policy.
pub(crate) struct DecisionCounters {
    stripes: Box<[Stripe]>,
    overflow: Stripe,
}

impl DecisionCounters {
    pub(crate) fn new() -> Self {
        Self { stripes: (0..STRIPES).map(|_| Stripe::default()).collect(), overflow: Stripe::default() }
    }

    #[inline]
    pub(crate) fn record(&self, allowed: bool) {
        let idx = SLOT.try_with(|s| s.0).unwrap_or(OVERFLOW);
        match self.stripes.get(idx) {
            Some(s) => {
                // Only this thread writes this stripe: load + store cannot lose an update, and
                // costs no locked instruction.
                let c = if allowed { &s.allowed } else { &s.rejected };
                c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
            }
            None => {
                let c = if allowed { &self.overflow.allowed } else { &self.overflow.rejected };
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// `(allowed, rejected)`; each total is exact once concurrent checks have returned.
    pub(crate) fn totals(&self) -> (u64, u64) {
        self.stripes
            .iter()
            .chain(std::iter::once(&self.overflow))
            .fold((0, 0), |(a, r), s| (a + s.allowed.load(Ordering::Relaxed), r + s.rejected.load(Ordering::Relaxed)))
    }
}

/// A snapshot of one limiter, for the metrics endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimiterMetrics {
    /// The policy name.
    pub policy: String,
    /// Keys currently tracked (the cardinality metric); `None` for the shared limiter, whose
    /// rows live in the database.
    pub keys: Option<usize>,
    /// The hard cap on `keys` (in-process limiter only).
    pub max_keys: Option<usize>,
    /// Requests admitted.
    pub allowed: u64,
    /// Requests refused by the quota (429).
    pub rejected: u64,
    /// Checks that got no decision (shared limiter: lock budget exceeded, database down).
    pub unavailable: u64,
    /// Keys (or rows) dropped because their bucket was full again: no information lost.
    pub pruned_idle: u64,
    /// Keys dropped while still carrying state, because the map was at its cap and idle keys did
    /// not free enough room. Each such key starts over with a full bucket; a non-zero value means
    /// the cap is too small for the traffic (or someone is flooding distinct keys).
    pub evicted_live: u64,
}
