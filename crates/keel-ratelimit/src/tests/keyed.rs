//! The keyed limiter: key cap under floods, eviction order, idle pruning, counters, threads.

use super::{limiter, q, SEC};
use crate::{Clock, FakeClock, KeyedLimiter};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn keys_are_independent() {
    let (l, _clock) = limiter("2/1m,burst=2");
    assert!(l.check(&1).is_allowed());
    assert!(l.check(&1).is_allowed());
    assert!(!l.check(&1).is_allowed());
    assert!(l.check(&2).is_allowed(), "key 2 has its own bucket");
    let m = l.metrics();
    assert_eq!((m.allowed, m.rejected, m.keys.unwrap()), (3, 1, 2));
}

#[test]
fn a_million_distinct_keys_never_exceed_the_cap() {
    let cap = 10_000;
    let (l, clock) = limiter("60/1m,burst=60");
    let l = l.max_keys(cap);
    // A heavy user drains its bucket before the flood: it carries the most state.
    for _ in 0..60 {
        assert!(l.check(&u64::MAX).is_allowed());
    }
    // Phase 1: 500k keys within half a second. Every key is live (a token comes back after
    // 1 s), so the cap can only be kept by evicting live keys.
    // Phase 2: 500k keys 110 us apart. The cap's worth of keys spans over a second, so the
    // oldest are idle when a sweep runs and are pruned for free.
    for k in 0..1_000_000u64 {
        clock.advance(Duration::from_micros(if k < 500_000 { 1 } else { 110 }));
        assert!(l.check(&k).is_allowed(), "a fresh key always has a full bucket");
        if k % 997 == 0 {
            assert!(l.keys() <= cap, "{} keys after {k} inserts", l.keys());
        }
    }
    assert!(clock.now() < 60 * SEC, "the heavy user's debt outlasts the flood");
    assert!(l.keys() <= cap);
    let m = l.metrics();
    assert_eq!(m.allowed, 1_000_060);
    assert_eq!(m.max_keys, Some(cap));
    assert!(m.evicted_live > 0, "phase 1 outgrew the cap within a second: live keys were evicted");
    assert!(m.pruned_idle > 0, "phase 2 left idle keys behind, pruned at no cost");
    // The most indebted key was never evicted. At 55.5 s it has earned 55 of its 60 tokens
    // back, so after this request 54 remain; had the flood evicted it, 59 would.
    assert_eq!(clock.now(), 55_500_000_000);
    let d = l.check(&u64::MAX);
    assert_eq!(d.remaining(), 54, "the flood must not reset the heavy user");
}

#[test]
fn at_the_cap_with_a_frozen_clock_the_least_indebted_keys_go_first() {
    let clock = FakeClock::new();
    let l = KeyedLimiter::with_clock("t", q("10/1s,burst=10"), clock.clone()).max_keys(16);
    // Key 100 spends its whole burst; keys 0..15 spend one token each.
    for _ in 0..10 {
        l.check(&100u64);
    }
    for k in 0..15u64 {
        l.check(&k);
    }
    assert_eq!(l.keys(), 16);
    // One more key: nothing is idle (time is frozen), so 2 (= 16/8) of the one-token keys go.
    l.check(&999);
    assert!(l.keys() <= 16);
    assert_eq!(l.metrics().evicted_live, 2);
    assert!(!l.check(&100).is_allowed(), "the drained key is still tracked and still refused");
}

#[test]
fn idle_keys_are_pruned_first_and_lose_nothing() {
    let clock = FakeClock::new();
    let l = KeyedLimiter::with_clock("t", q("1/1s,burst=1"), clock.clone()).max_keys(100);
    for k in 0..100u64 {
        l.check(&k);
    }
    clock.advance(Duration::from_secs(1)); // every bucket is full again
    l.check(&1_000);
    let m = l.metrics();
    assert_eq!(m.evicted_live, 0);
    assert_eq!(m.pruned_idle, 100);
    assert_eq!(m.keys.unwrap(), 1);
}

#[test]
fn the_limiter_prunes_idle_keys_without_being_full() {
    let clock = FakeClock::new();
    let l = KeyedLimiter::with_clock("t", q("1/1s,burst=1"), clock.clone()).max_keys(1_000);
    for k in 0..200u64 {
        l.check(&k);
    }
    clock.advance(Duration::from_secs(2));
    // Every max_keys/4 = 250 new keys an idle-only sweep runs by itself.
    for k in 200..250u64 {
        l.check(&k);
    }
    let m = l.metrics();
    assert_eq!(m.pruned_idle, 200);
    assert_eq!(m.keys.unwrap(), 50);
    assert_eq!(l.prune_idle(), 0, "nothing idle left: the 50 new keys are live");
}

#[test]
fn one_hot_key_across_threads_admits_exactly_the_burst() {
    let clock = FakeClock::new();
    let l = Arc::new(KeyedLimiter::with_clock("t", q("100/1h,burst=100"), clock));
    let admitted: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let l = Arc::clone(&l);
                s.spawn(move || (0..1_000).filter(|_| l.check(&7u32).is_allowed()).count())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(admitted, 100);
    let m = l.metrics();
    assert_eq!((m.allowed, m.rejected), (100, 3_900));
}

#[test]
fn concurrent_floods_respect_the_cap() {
    let clock = FakeClock::new();
    let cap = 500;
    let l = Arc::new(KeyedLimiter::with_clock("t", q("60/1m"), clock).max_keys(cap));
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let l = Arc::clone(&l);
            s.spawn(move || {
                for k in 0..20_000u64 {
                    l.check(&(t << 32 | k));
                    // `keys()` sums shards one lock at a time, so under concurrent inserts and
                    // evictions it is not a snapshot; the reservation count is, and bounds it.
                    assert!(l.reserved_slots() <= cap);
                }
            });
        }
    });
    assert!(l.keys() <= cap, "quiescent: exact");
    assert_eq!(l.keys(), l.reserved_slots(), "every reservation became an entry or was returned");
    assert_eq!(l.metrics().allowed, 80_000);
}

#[test]
fn real_clock_limiter_decides() {
    let l: KeyedLimiter<&str> = KeyedLimiter::new("real", q("3/1h,burst=3"));
    assert!(l.check(&"a").is_allowed());
    assert!(l.check(&"a").is_allowed());
    assert!(l.check(&"a").is_allowed());
    let d = l.check(&"a");
    assert!(!d.is_allowed());
    // 20 minutes per token, minus however long this test took to get here.
    assert!(d.retry_after() <= Duration::from_secs(1_200));
    assert!(d.retry_after() > Duration::ZERO);
}

#[test]
fn counts_stay_exact_across_many_short_lived_threads() {
    // More threads over time than there are stripes: slots are recycled as threads exit, and
    // concurrent ones beyond the stripes share the atomic overflow stripe.
    let l = Arc::new(KeyedLimiter::with_clock("t", q("1/1h,burst=1"), FakeClock::new()));
    for _round in 0..5 {
        std::thread::scope(|s| {
            for t in 0..80u64 {
                let l = Arc::clone(&l);
                s.spawn(move || {
                    for i in 0..100u64 {
                        l.check(&(t * 1_000 + i % 50));
                    }
                });
            }
        });
    }
    let m = l.metrics();
    assert_eq!(m.allowed, 80 * 50, "each key admitted once in all");
    assert_eq!(m.allowed + m.rejected, 5 * 80 * 100);
}
