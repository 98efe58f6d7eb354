//! Per-policy decision counters, striped by thread so counting costs no cache-line ping-pong.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const STRIPES: usize = 16;

/// One cache line (two on CPUs with adjacent-line prefetch) per stripe, so two threads counting
/// at once never write the same line.
#[repr(align(128))]
#[derive(Default)]
struct Stripe {
    allowed: AtomicU64,
    rejected: AtomicU64,
}

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MY_STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn my_stripe() -> usize {
    MY_STRIPE.with(|s| {
        let v = s.get();
        if v != usize::MAX {
            return v;
        }
        let v = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
        s.set(v);
        v
    })
}

/// Allowed and rejected totals for one policy.
pub(crate) struct DecisionCounters {
    stripes: Box<[Stripe]>,
}

impl DecisionCounters {
    pub(crate) fn new() -> Self {
        Self { stripes: (0..STRIPES).map(|_| Stripe::default()).collect() }
    }

    #[inline]
    pub(crate) fn record(&self, allowed: bool) {
        let s = &self.stripes[my_stripe()];
        let c = if allowed { &s.allowed } else { &s.rejected };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// `(allowed, rejected)`; each total is exact once concurrent checks have returned.
    pub(crate) fn totals(&self) -> (u64, u64) {
        self.stripes
            .iter()
            .fold((0, 0), |(a, r), s| (a + s.allowed.load(Ordering::Relaxed), r + s.rejected.load(Ordering::Relaxed)))
    }
}

/// A snapshot of one limiter, for the metrics endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimiterMetrics {
    pub policy: String,
    /// Keys currently tracked (the cardinality metric); `None` for the shared limiter, whose
    /// rows live in the database.
    pub keys: Option<usize>,
    /// The hard cap on `keys` (in-process limiter only).
    pub max_keys: Option<usize>,
    pub allowed: u64,
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
