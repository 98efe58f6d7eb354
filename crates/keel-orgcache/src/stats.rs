//! Per-bucket counters (striped so two threads hitting the cache do not share a cache line)
//! and the snapshot the metrics endpoint renders.

use crate::bucket::Bucket;
use moka::notification::RemovalCause;
use serde::Serialize;
use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

const STRIPES: usize = 8;

#[repr(align(128))]
#[derive(Default)]
struct Slot(AtomicU64);

/// A counter split over cache-line-sized slots, one chosen per thread.
#[derive(Default)]
pub(crate) struct Striped([Slot; STRIPES]);

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn stripe() -> usize {
    STRIPE.with(|s| {
        let v = s.get();
        if v != usize::MAX {
            return v;
        }
        let v = NEXT_STRIPE.fetch_add(1, Relaxed) % STRIPES;
        s.set(v);
        v
    })
}

impl Striped {
    #[inline]
    pub(crate) fn incr(&self) {
        self.0[stripe()].0.fetch_add(1, Relaxed);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.0.iter().map(|s| s.0.load(Relaxed)).sum()
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) hits: Striped,
    pub(crate) misses: Striped,
    pub(crate) loads: AtomicU64,
    pub(crate) load_failures: AtomicU64,
    pub(crate) load_panics: AtomicU64,
    pub(crate) load_timeouts: AtomicU64,
    pub(crate) load_nanos: AtomicU64,
    pub(crate) superseded: AtomicU64,
    pub(crate) type_mismatches: AtomicU64,
    pub(crate) evicted_explicit: AtomicU64,
    pub(crate) evicted_replaced: AtomicU64,
    pub(crate) evicted_expired: AtomicU64,
    pub(crate) evicted_size: AtomicU64,
}

impl Counters {
    pub(crate) fn evicted(&self, cause: RemovalCause) {
        match cause {
            RemovalCause::Explicit => &self.evicted_explicit,
            RemovalCause::Replaced => &self.evicted_replaced,
            RemovalCause::Expired => &self.evicted_expired,
            RemovalCause::Size => &self.evicted_size,
        }
        .fetch_add(1, Relaxed);
    }

    pub(crate) fn load_took(&self, d: Duration) {
        self.load_nanos.fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    pub(crate) fn snapshot(&self, bucket: Bucket, entries: u64, weighted_size: u64) -> BucketStats {
        BucketStats {
            bucket,
            hits: self.hits.sum(),
            misses: self.misses.sum(),
            loads: self.loads.load(Relaxed),
            load_failures: self.load_failures.load(Relaxed),
            load_panics: self.load_panics.load(Relaxed),
            load_timeouts: self.load_timeouts.load(Relaxed),
            load_time_ms: self.load_nanos.load(Relaxed) as f64 / 1e6,
            superseded_fills: self.superseded.load(Relaxed),
            type_mismatches: self.type_mismatches.load(Relaxed),
            evictions: Evictions {
                explicit: self.evicted_explicit.load(Relaxed),
                replaced: self.evicted_replaced.load(Relaxed),
                expired: self.evicted_expired.load(Relaxed),
                size: self.evicted_size.load(Relaxed),
            },
            entries,
            weighted_size,
        }
    }
}

/// Removals by cause, as moka reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Evictions {
    /// Removed by an invalidation (key, tag, bucket or resync).
    pub explicit: u64,
    /// Overwritten by a newer value for the same key.
    pub replaced: u64,
    /// Past the bucket's TTL.
    pub expired: u64,
    /// Evicted to stay within the bucket's weighted capacity.
    pub size: u64,
}

/// One bucket's counters at one moment. `entries` and `weighted_size` come from moka and lag
/// by up to one maintenance cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketStats {
    /// The bucket counted.
    pub bucket: Bucket,
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads that found nothing.
    pub misses: u64,
    /// Loader runs (a single-flight load counts once however many callers waited).
    pub loads: u64,
    /// Loader runs that returned an error.
    pub load_failures: u64,
    /// Loader runs that panicked.
    pub load_panics: u64,
    /// Loader runs cut off at the load timeout.
    pub load_timeouts: u64,
    /// Total time spent in loaders.
    pub load_time_ms: f64,
    /// Loads whose result was not stored because an invalidation overtook them.
    pub superseded_fills: u64,
    /// Reads of a key stored with a different value type (a programming error).
    pub type_mismatches: u64,
    /// Removals by cause.
    pub evictions: Evictions,
    /// Entries held.
    pub entries: u64,
    /// Approximate bytes held (the sum of entry weights).
    pub weighted_size: u64,
}

/// Counters of the invalidation bus, shared by every bus implementation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BusStats {
    /// Invalidations sent to the other instances.
    pub published: u64,
    /// Invalidations that could not be sent (the TTL bounds what the others then serve).
    pub publish_failures: u64,
    /// Messages received (our own echoes included).
    pub received: u64,
    /// Messages that could not be parsed (each caused a flush).
    pub malformed: u64,
    /// Epoch gaps detected (each caused a flush of that org).
    pub gaps: u64,
    /// Full flushes after a reconnect, a lag or an unreadable org.
    pub resyncs: u64,
}

/// Name, Prometheus type, and how to read the value from one bucket.
type Metric = (&'static str, &'static str, fn(&BucketStats) -> f64);

/// Everything the metrics endpoint needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsSnapshot {
    /// One entry per bucket, in configuration order.
    pub buckets: Vec<BucketStats>,
    /// The invalidation bus.
    pub bus: BusStats,
}

impl StatsSnapshot {
    /// The counters of one bucket.
    pub fn bucket(&self, bucket: Bucket) -> Option<&BucketStats> {
        self.buckets.iter().find(|b| b.bucket == bucket)
    }

    /// Prometheus text exposition, one sample per bucket (and cause) per metric.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let counters: [Metric; 9] = [
            ("keel_orgcache_hits_total", "counter", |b| b.hits as f64),
            ("keel_orgcache_misses_total", "counter", |b| b.misses as f64),
            ("keel_orgcache_loads_total", "counter", |b| b.loads as f64),
            ("keel_orgcache_load_failures_total", "counter", |b| {
                (b.load_failures + b.load_panics + b.load_timeouts) as f64
            }),
            ("keel_orgcache_load_seconds_total", "counter", |b| b.load_time_ms / 1000.0),
            ("keel_orgcache_superseded_fills_total", "counter", |b| b.superseded_fills as f64),
            ("keel_orgcache_type_mismatches_total", "counter", |b| b.type_mismatches as f64),
            ("keel_orgcache_entries", "gauge", |b| b.entries as f64),
            ("keel_orgcache_weighted_size", "gauge", |b| b.weighted_size as f64),
        ];
        for (name, kind, f) in counters {
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for b in &self.buckets {
                let _ = writeln!(out, "{name}{{bucket=\"{}\"}} {}", b.bucket, f(b));
            }
        }
        let _ = writeln!(out, "# TYPE keel_orgcache_evictions_total counter");
        for b in &self.buckets {
            let e = b.evictions;
            for (cause, n) in
                [("explicit", e.explicit), ("replaced", e.replaced), ("expired", e.expired), ("size", e.size)]
            {
                let _ = writeln!(out, "keel_orgcache_evictions_total{{bucket=\"{}\",cause=\"{cause}\"}} {n}", b.bucket);
            }
        }
        let bus = self.bus;
        for (name, n) in [
            ("keel_orgcache_bus_published_total", bus.published),
            ("keel_orgcache_bus_publish_failures_total", bus.publish_failures),
            ("keel_orgcache_bus_received_total", bus.received),
            ("keel_orgcache_bus_malformed_total", bus.malformed),
            ("keel_orgcache_bus_gaps_total", bus.gaps),
            ("keel_orgcache_bus_resyncs_total", bus.resyncs),
        ] {
            let _ = writeln!(out, "# TYPE {name} counter\n{name} {n}");
        }
        out
    }
}
