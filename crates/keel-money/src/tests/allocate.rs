//! Tests for allocation: Fowler's conundrum, zero ratios, negatives and every refusal.

use crate::{Currency, Money, MoneyError};

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::USD)
}

fn minors(parts: &[Money]) -> Vec<i64> {
    parts.iter().map(|m| m.minor()).collect()
}

#[test]
fn five_cents_at_thirty_seventy_keeps_every_cent() {
    assert_eq!(minors(&usd(5).allocate(&[30, 70]).unwrap()), [2, 3]);
    // 3.5 and 1.5 tie on remainder; the earlier share takes the leftover cent.
    assert_eq!(minors(&usd(5).allocate(&[70, 30]).unwrap()), [4, 1]);
}

#[test]
fn leftovers_go_to_the_largest_remainders_not_the_first_shares() {
    // 100 at 1:1:1:7 -> 10, 10, 10, 70 exact; 101 at 1:1:1:7 -> shares 10.1, 10.1, 10.1, 70.7.
    assert_eq!(minors(&usd(101).allocate(&[1, 1, 1, 7]).unwrap()), [10, 10, 10, 71]);
    // 10 at 1:3 -> 2.5, 7.5: tie, earlier wins.
    assert_eq!(minors(&usd(10).allocate(&[1, 3]).unwrap()), [3, 7]);
}

#[test]
fn zero_ratios_get_exactly_zero() {
    assert_eq!(minors(&usd(7).allocate(&[0, 1, 0, 1]).unwrap()), [0, 4, 0, 3]);
}

#[test]
fn negative_amounts_mirror_positive_ones() {
    assert_eq!(minors(&usd(-5).allocate(&[30, 70]).unwrap()), [-2, -3]);
    assert_eq!(minors(&usd(-1000).split(3).unwrap()), [-334, -333, -333]);
}

#[test]
fn extremes_are_exact() {
    let parts = usd(i64::MIN).allocate(&[u64::MAX, u64::MAX, 1]).unwrap();
    assert_eq!(parts.iter().map(|m| i128::from(m.minor())).sum::<i128>(), i128::from(i64::MIN));
    let parts = usd(i64::MAX).split(7).unwrap();
    assert_eq!(parts.iter().map(|m| i128::from(m.minor())).sum::<i128>(), i128::from(i64::MAX));
}

#[test]
fn split_gives_extra_units_to_the_first_parts() {
    assert_eq!(minors(&usd(1000).split(3).unwrap()), [334, 333, 333]);
    assert_eq!(minors(&usd(2).split(4).unwrap()), [1, 1, 0, 0]);
    let jpy = Money::from_minor(100, Currency::JPY).split(3).unwrap();
    assert!(jpy.iter().all(|m| m.currency() == Currency::JPY));
}

#[test]
fn bad_ratios_and_zero_parts_are_refused_by_name() {
    let invalid = |reason| Err(MoneyError::InvalidAllocation { reason });
    assert_eq!(usd(1).allocate(&[]), invalid("no ratios given: pass at least one"));
    assert_eq!(usd(1).allocate(&[0, 0]), invalid("every ratio is zero: at least one must be positive"));
    assert_eq!(usd(1).split(0), invalid("cannot split into 0 parts: parts must be at least 1"));
    assert_eq!(
        usd(1).split(0).unwrap_err().to_string(),
        "cannot allocate: cannot split into 0 parts: parts must be at least 1"
    );
}
