//! Exact GCRA decisions on a fake clock: burst, rolling window, retry-after, header quantities.

use super::{limiter, ns, q, SEC};
use crate::Decision;
use proptest::prelude::*;
use std::time::Duration;

#[test]
fn sixty_per_minute_admits_exactly_sixty_in_the_first_second() {
    let (l, clock) = limiter("60/1m,burst=60");
    for i in 0..60 {
        let d = l.check(&1);
        assert!(d.is_allowed(), "request {i} at t=0");
        assert_eq!(d.remaining(), 59 - i);
    }
    let d = l.check(&1);
    assert!(!d.is_allowed());
    assert_eq!(d.retry_after(), Duration::from_secs(1));
    assert_eq!(d.remaining(), 0);

    // Anywhere inside the first second: still refused, retry-after shrinking to the 1 s mark.
    clock.set(SEC - 1);
    let d = l.check(&1);
    assert!(!d.is_allowed());
    assert_eq!(d.retry_after(), ns(1));

    clock.set(SEC);
    assert!(l.check(&1).is_allowed(), "the 1 s mark earns one token back");
    let d = l.check(&1);
    assert!(!d.is_allowed());
    assert_eq!(d.retry_after(), Duration::from_secs(1));
}

#[test]
fn retry_after_is_exact_to_the_nanosecond() {
    let (l, clock) = limiter("7/1m,burst=2"); // T = 8_571_428_571 ns, not a round number
    let t = 60 * SEC / 7;
    assert!(l.check(&9).is_allowed());
    assert!(l.check(&9).is_allowed());
    clock.set(12_345);
    let d = l.check(&9);
    assert!(!d.is_allowed());
    let wait = d.retry_after();
    assert_eq!(wait, ns(t - 12_345));

    clock.advance(wait - ns(1));
    assert!(!l.check(&9).is_allowed(), "one nanosecond early is still early");
    clock.advance(ns(1));
    assert!(l.check(&9).is_allowed(), "exactly at retry-after is admitted");
}

#[test]
fn rejections_change_nothing() {
    let (l, clock) = limiter("1/1s,burst=1");
    assert!(l.check(&5).is_allowed());
    for step in 0..1000 {
        clock.set(step * 1_000_000 / 2); // hammer through the first half second
        assert!(!l.check(&5).is_allowed());
    }
    clock.set(SEC);
    assert!(l.check(&5).is_allowed(), "a thousand refusals did not push the key's next slot back");
}

/// Admitted times of a client that tries every millisecond for `total`.
fn greedy_trace(spec: &str, total: Duration) -> Vec<u64> {
    let (l, clock) = limiter(spec);
    let step = 1_000_000;
    let mut admitted = Vec::new();
    let mut t = 0;
    while t < total.as_nanos() as u64 {
        clock.set(t);
        // Several tries per instant, so a burst is taken whole.
        while l.check(&1).is_allowed() {
            admitted.push(t);
        }
        t += step;
    }
    admitted
}

/// The most admitted times in any half-open window [a, a + w).
fn max_in_any_window(times: &[u64], w: u64) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi] - times[lo] >= w {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

#[test]
fn sixty_per_minute_admits_at_most_119_in_any_rolling_minute() {
    let quota = q("60/1m,burst=60");
    let times = greedy_trace("60/1m,burst=60", Duration::from_secs(300));
    assert_eq!(max_in_any_window(&times, 60 * SEC), 119);
    assert_eq!(quota.max_in_window(Duration::from_secs(60)), 119);
    assert_eq!(max_in_any_window(&times, SEC), 60);
    assert_eq!(quota.max_in_window(Duration::from_secs(1)), 60);
    // Long-run rate: 60 + 1 per second after the burst.
    assert_eq!(times.len(), 60 + 299);
}

#[test]
fn the_strict_window_recipe_never_exceeds_its_window() {
    // "At most 60 in any minute, in bursts of up to 30" is 31/1m,burst=30.
    let times = greedy_trace("31/1m,burst=30", Duration::from_secs(600));
    assert_eq!(max_in_any_window(&times, 60 * SEC), 60);
    let times = greedy_trace("60/1m,burst=1", Duration::from_secs(300));
    assert_eq!(max_in_any_window(&times, 60 * SEC), 60);
    assert_eq!(max_in_any_window(&times, SEC), 1);
}

#[test]
fn header_quantities() {
    let quota = q("60/1m,burst=60");
    let first = Decision::evaluate(&quota, None, 0);
    assert!(first.is_allowed());
    assert_eq!(first.limit(), 60);
    assert_eq!(first.remaining(), 59);
    assert_eq!(first.retry_after(), Duration::ZERO);
    assert_eq!(first.reset_after(), Duration::from_secs(1), "one token spent, back in 1 s");
    assert_eq!(first.next_unit_after(), Duration::from_secs(1));

    // Ten spent, 2.5 s later: 2 earned back, 8 still owed.
    let mut tat = None;
    for _ in 0..10 {
        tat = Some(Decision::evaluate(&quota, tat, 0).tat());
    }
    let d = Decision::evaluate(&quota, tat, 2_500_000_000);
    assert!(d.is_allowed());
    assert_eq!(d.remaining(), 60 - 9);
    assert_eq!(d.reset_after(), Duration::from_millis(8_500));
    assert_eq!(d.next_unit_after(), Duration::from_millis(500));

    // A full bucket has nothing more to earn.
    let idle = Decision::from_state(&quota, true, 100 * SEC, 100 * SEC);
    assert_eq!(idle.next_unit_after(), Duration::ZERO);
    assert_eq!(idle.reset_after(), Duration::ZERO);
}

#[test]
fn rejection_reports_next_unit_equal_to_retry_after() {
    let quota = q("60/1m,burst=60");
    let mut tat = None;
    for _ in 0..60 {
        tat = Some(Decision::evaluate(&quota, tat, 0).tat());
    }
    let d = Decision::evaluate(&quota, tat, 300_000_000);
    assert!(!d.is_allowed());
    assert_eq!(d.retry_after(), Duration::from_millis(700));
    assert_eq!(d.next_unit_after(), d.retry_after());
    assert_eq!(d.reset_after(), Duration::from_millis(59_700));
}

/// An independent model: a token bucket holding `level` nanoseconds of credit, capped at
/// `burst * T`, refilled by elapsed time, a request costing `T`.
struct Bucket {
    level: u64,
    cap: u64,
    cost: u64,
    last: u64,
}

impl Bucket {
    fn try_take(&mut self, now: u64) -> bool {
        self.level = (self.level + (now - self.last)).min(self.cap);
        self.last = now;
        if self.level >= self.cost {
            self.level -= self.cost;
            true
        } else {
            false
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// The limiter agrees with the token-bucket model on random traces, including exact
    /// remaining counts.
    #[test]
    fn matches_a_token_bucket_model(
        count in 1u32..200,
        period_ms in 1u64..120_000,
        burst in 1u32..50,
        gaps in proptest::collection::vec(0u64..3_000_000_000, 1..300),
    ) {
        let period = Duration::from_millis(period_ms);
        let Ok(quota) = crate::Quota::new(count, period, burst) else { return Ok(()) };
        let t = quota.emission_interval().as_nanos() as u64;
        let clock = crate::FakeClock::new();
        let l = crate::KeyedLimiter::with_clock("p", quota, clock.clone());
        let mut model = Bucket { level: t * u64::from(burst), cap: t * u64::from(burst), cost: t, last: 0 };
        let mut now = 0;
        for gap in gaps {
            now += gap % (3 * t + 1);
            clock.set(now);
            let d = l.check(&0u8);
            prop_assert_eq!(d.is_allowed(), model.try_take(now));
            prop_assert_eq!(u64::from(d.remaining()), if d.is_allowed() { model.level / t } else { 0 });
        }
    }
}
