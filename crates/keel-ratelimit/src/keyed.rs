//! `KeyedLimiter`: the in-process GCRA, one `AtomicU64` per key in a `DashMap` with a hard cap.

use crate::gcra::{step, Decision};
use crate::metrics::{DecisionCounters, LimiterMetrics};
use crate::{Clock, MonotonicClock, Quota};
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The default cap on tracked keys per limiter. At roughly 64 bytes per key with a string key,
/// that is about 6 MB per policy at worst.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// An in-process rate limiter keyed by `K`, with a hard cap on the number of keys.
///
/// # Memory bound and eviction rule
/// The map never holds more than `max_keys` entries (the count is reserved before an insert, so
/// this holds under concurrency too). When a new key arrives and the map is full, the limiter
/// itself makes room, in this order:
///
/// 1. **Idle keys go first.** A key whose TAT is not in the future has a full bucket, which is
///    exactly the state of a key never seen; dropping it loses nothing. All of them are dropped.
/// 2. **If that frees less than an eighth of the cap**, the keys *closest to a full bucket*
///    (smallest TAT) are evicted until an eighth is free. An evicted key starts over with a full
///    bucket, so the cost of a too-small cap is at most one extra burst for the least-indebted
///    clients; the heaviest users (largest TAT) are the last to be forgotten. New keys are never
///    refused, so a flood of fresh keys cannot lock legitimate new clients out.
///
/// Freeing an eighth at a time makes each O(n) sweep pay for n/8 inserts, so a flood of distinct
/// keys costs amortised O(1) per request, not O(n). Besides sweeping at the cap, every
/// `max_keys / 4` new keys trigger an idle-only sweep if no other sweep is running, so the key
/// count tracks live keys without anyone running a cleanup loop.
pub struct KeyedLimiter<K, C = MonotonicClock, S = RandomState> {
    policy: Arc<str>,
    quota: Quota,
    emission_ns: u64,
    tau_ns: u64,
    map: DashMap<K, AtomicU64, S>,
    clock: C,
    max_keys: usize,
    /// Reserved slots: always `>= map.len()` and `<= max_keys`.
    slots: AtomicUsize,
    sweep: Mutex<()>,
    inserts_since_sweep: AtomicUsize,
    counters: DecisionCounters,
    pruned_idle: AtomicU64,
    evicted_live: AtomicU64,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// A limiter for `policy` on the real monotonic clock, capped at [`DEFAULT_MAX_KEYS`].
    pub fn new(policy: impl Into<Arc<str>>, quota: Quota) -> Self {
        Self::with_clock_and_hasher(policy, quota, MonotonicClock::new(), RandomState::new())
    }
}

impl<K: Hash + Eq + Clone, C: Clock> KeyedLimiter<K, C> {
    /// A limiter for `policy` on `clock` (tests use a [`FakeClock`](crate::FakeClock)).
    pub fn with_clock(policy: impl Into<Arc<str>>, quota: Quota, clock: C) -> Self {
        Self::with_clock_and_hasher(policy, quota, clock, RandomState::new())
    }
}

impl<K, C, S> KeyedLimiter<K, C, S>
where
    K: Hash + Eq + Clone,
    C: Clock,
    S: BuildHasher + Clone,
{
    /// The general constructor. The hasher defaults to SipHash with a random key elsewhere,
    /// because limiter keys are attacker-chosen (HashDoS).
    pub fn with_clock_and_hasher(policy: impl Into<Arc<str>>, quota: Quota, clock: C, hasher: S) -> Self {
        Self {
            policy: policy.into(),
            quota,
            emission_ns: quota.emission_ns(),
            tau_ns: quota.tau_ns(),
            map: DashMap::with_hasher(hasher),
            clock,
            max_keys: DEFAULT_MAX_KEYS,
            slots: AtomicUsize::new(0),
            sweep: Mutex::new(()),
            inserts_since_sweep: AtomicUsize::new(0),
            counters: DecisionCounters::new(),
            pruned_idle: AtomicU64::new(0),
            evicted_live: AtomicU64::new(0),
        }
    }

    /// Sets the hard cap on tracked keys (at least 1). Call before sharing the limiter.
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.max(1);
        self
    }

    /// Decides one request for `key` now, and records it.
    #[inline]
    pub fn check(&self, key: &K) -> Decision {
        let now = self.clock.now();
        let decision = match self.map.get(key) {
            Some(cell) => self.apply(cell.value(), now),
            None => self.insert_and_apply(key, now),
        };
        self.counters.record(decision.is_allowed());
        decision
    }

    #[inline]
    fn apply(&self, cell: &AtomicU64, now: u64) -> Decision {
        let mut tat = cell.load(Ordering::Acquire);
        loop {
            match step(tat, now, self.emission_ns, self.tau_ns) {
                None => return Decision::from_state(&self.quota, false, now, tat),
                Some(next) => match cell.compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return Decision::from_state(&self.quota, true, now, next),
                    Err(actual) => tat = actual,
                },
            }
        }
    }

    #[cold]
    fn insert_and_apply(&self, key: &K, now: u64) -> Decision {
        self.reserve_slot();
        let decision = match self.map.entry(key.clone()) {
            Entry::Occupied(e) => {
                // Another thread inserted it between our miss and now: give the slot back.
                self.slots.fetch_sub(1, Ordering::AcqRel);
                self.apply(e.get(), now)
            }
            Entry::Vacant(v) => {
                let cell = v.insert(AtomicU64::new(0));
                self.apply(cell.value(), now)
            }
        };
        let every = (self.max_keys / 4).max(1);
        if self.inserts_since_sweep.fetch_add(1, Ordering::Relaxed) + 1 >= every {
            if let Ok(_guard) = self.sweep.try_lock() {
                self.inserts_since_sweep.store(0, Ordering::Relaxed);
                self.prune_idle_locked(self.clock.now());
            }
        }
        decision
    }

    /// Takes one slot under the cap, making room first if the map is full.
    fn reserve_slot(&self) {
        loop {
            if self.try_reserve() {
                return;
            }
            let _guard = self.lock_sweep();
            // Another thread may have made room while we waited for the lock.
            if self.try_reserve() {
                return;
            }
            self.make_room(self.clock.now());
        }
    }

    #[inline]
    fn try_reserve(&self) -> bool {
        let max = self.max_keys;
        self.slots.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).is_ok()
    }

    fn lock_sweep(&self) -> MutexGuard<'_, ()> {
        // The guarded data is `()`: a panic elsewhere cannot have left it inconsistent.
        self.sweep.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Frees at least an eighth of the cap: idle keys first, then the least-indebted live ones.
    /// Caller holds the sweep lock.
    fn make_room(&self, now: u64) {
        let target = (self.max_keys / 8).max(1);
        let pruned = self.prune_idle_locked(now);
        if pruned >= target {
            return;
        }
        let need = target - pruned;
        let mut tats: Vec<u64> = self.map.iter().map(|e| e.value().load(Ordering::Relaxed)).collect();
        if tats.is_empty() {
            return;
        }
        let k = need.min(tats.len()) - 1;
        let (_, cutoff, _) = tats.select_nth_unstable(k);
        let cutoff = *cutoff;
        let below = tats.iter().filter(|&&t| t < cutoff).count();
        // Ties at the cutoff: evict only as many as needed, not every key sharing that TAT.
        let mut ties = (k + 1).saturating_sub(below);
        drop(tats);
        let mut evicted = 0usize;
        self.map.retain(|_, cell| {
            let t = cell.load(Ordering::Relaxed);
            let evict = t < cutoff || (t == cutoff && ties > 0);
            if evict {
                if t == cutoff {
                    ties -= 1;
                }
                evicted += 1;
            }
            !evict
        });
        if evicted == 0 {
            // Every candidate's TAT rose while we looked; drop any one key so the insert proceeds.
            let mut dropped = false;
            self.map.retain(|_, _| std::mem::replace(&mut dropped, true));
            evicted = usize::from(dropped);
        }
        self.slots.fetch_sub(evicted, Ordering::AcqRel);
        self.evicted_live.fetch_add(evicted as u64, Ordering::Relaxed);
    }

    fn prune_idle_locked(&self, now: u64) -> usize {
        let mut pruned = 0usize;
        self.map.retain(|_, cell| {
            let keep = cell.load(Ordering::Acquire) > now;
            pruned += usize::from(!keep);
            keep
        });
        self.slots.fetch_sub(pruned, Ordering::AcqRel);
        self.pruned_idle.fetch_add(pruned as u64, Ordering::Relaxed);
        pruned
    }

    /// Drops every idle key now and returns how many. Never needed for correctness or for the
    /// memory bound (the limiter sweeps by itself); useful before reading an exact key count.
    pub fn prune_idle(&self) -> usize {
        let _guard = self.lock_sweep();
        self.prune_idle_locked(self.clock.now())
    }

    /// Keys currently tracked. Exact when no check is running; under concurrent inserts and
    /// evictions it sums the shards one at a time and may be off by the keys in flight.
    pub fn keys(&self) -> usize {
        self.map.len()
    }

    /// Slots reserved under the cap: never less than the true key count, never more than the cap.
    #[cfg(test)]
    pub(crate) fn reserved_slots(&self) -> usize {
        self.slots.load(Ordering::Acquire)
    }

    /// The hard cap on tracked keys.
    pub fn capacity(&self) -> usize {
        self.max_keys
    }

    /// The policy name, as in headers and metrics.
    pub fn policy(&self) -> &str {
        &self.policy
    }

    /// The quota every key is held to.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// The clock decisions are made on.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// A snapshot of this limiter's counters.
    pub fn metrics(&self) -> LimiterMetrics {
        let (allowed, rejected) = self.counters.totals();
        LimiterMetrics {
            policy: self.policy.to_string(),
            keys: Some(self.keys()),
            max_keys: Some(self.max_keys),
            allowed,
            rejected,
            unavailable: 0,
            pruned_idle: self.pruned_idle.load(Ordering::Relaxed),
            evicted_live: self.evicted_live.load(Ordering::Relaxed),
        }
    }
}
