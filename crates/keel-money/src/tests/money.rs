//! Tests for `Money` arithmetic: checked results, mismatches, overflow, rates and serde.

use crate::{Currency, Money, MoneyError, Rate, Rounding};
use std::cmp::Ordering;

const USD: Currency = Currency::USD;

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, USD)
}

#[test]
fn add_and_subtract_within_a_currency() {
    assert_eq!(usd(150).checked_add(usd(-200)), Ok(usd(-50)));
    assert_eq!(usd(150).checked_sub(usd(200)), Ok(usd(-50)));
    assert_eq!(usd(i64::MAX - 1).checked_add(usd(1)), Ok(usd(i64::MAX)));
}

#[test]
fn different_currencies_are_never_combined() {
    let eur = Money::from_minor(100, Currency::EUR);
    let err = usd(100).checked_add(eur).unwrap_err();
    assert_eq!(err, MoneyError::CurrencyMismatch { op: "add", left: USD, right: Currency::EUR });
    assert_eq!(
        err.to_string(),
        "cannot add USD and EUR: amounts in different currencies are never combined; convert explicitly first"
    );
    assert!(matches!(usd(1).checked_sub(eur), Err(MoneyError::CurrencyMismatch { op: "subtract", .. })));
    assert!(matches!(usd(1).checked_cmp(eur), Err(MoneyError::CurrencyMismatch { op: "compare", .. })));
    assert!(matches!(
        Money::sum(USD, [usd(1), eur]),
        Err(MoneyError::CurrencyMismatch { op: "sum", left: Currency::USD, right: Currency::EUR })
    ));
}

#[test]
fn overflow_is_an_error_never_a_wrap() {
    let overflow = |op| Err(MoneyError::Overflow { op });
    assert_eq!(usd(i64::MAX).checked_add(usd(1)), overflow("add"));
    assert_eq!(usd(i64::MIN).checked_sub(usd(1)), overflow("subtract"));
    assert_eq!(usd(i64::MIN).checked_neg(), overflow("negate"));
    assert_eq!(usd(i64::MIN).checked_abs(), overflow("abs"));
    assert_eq!(usd(i64::MAX / 2 + 1).checked_mul(2), overflow("multiply"));
    assert_eq!(Money::from_major(i64::MAX / 10, USD), overflow("from_major"));
    assert_eq!(Money::from_minor_i128(i128::from(i64::MAX) + 1, USD), overflow("from_minor_i128"));
    assert_eq!(
        usd(i64::MAX).mul_rate(Rate::parse_factor("1.5").unwrap(), Rounding::HalfEven),
        overflow("multiply by rate")
    );
    assert_eq!(
        MoneyError::Overflow { op: "add" }.to_string(),
        "add overflowed: the result does not fit in i64 minor units"
    );
}

#[test]
fn sum_uses_a_wide_accumulator_so_order_does_not_matter() {
    // i64::MAX + 1 - 1 would overflow pairwise, but the total fits.
    assert_eq!(Money::sum(USD, [usd(i64::MAX), usd(1), usd(-1)]), Ok(usd(i64::MAX)));
    assert_eq!(Money::sum(USD, []), Ok(usd(0)));
    assert_eq!(Money::sum(USD, [usd(i64::MAX), usd(1)]), Err(MoneyError::Overflow { op: "sum" }));
}

#[test]
fn negation_abs_and_predicates() {
    assert_eq!(usd(-5).checked_neg(), Ok(usd(5)));
    assert_eq!(usd(-5).checked_abs(), Ok(usd(5)));
    assert!(usd(-1).is_negative() && usd(1).is_positive() && usd(0).is_zero());
    assert_eq!(Money::zero(Currency::JPY).currency(), Currency::JPY);
    assert_eq!(usd(1).checked_cmp(usd(2)), Ok(Ordering::Less));
}

#[test]
fn quantity_rate_and_ratio_round_once_and_explicitly() {
    assert_eq!(usd(1999).checked_mul(3), Ok(usd(5997)));
    assert_eq!(Money::from_major(12, Currency::KWD), Ok(Money::from_minor(12_000, Currency::KWD)));
    // 8.875 % of $10.00 is 88.75¢.
    let tax = Rate::parse_percent("8.875").unwrap();
    assert_eq!(usd(1000).mul_rate(tax, Rounding::HalfEven), Ok(usd(89)));
    assert_eq!(usd(1000).mul_rate(tax, Rounding::TowardZero), Ok(usd(88)));
    // 12 of 31 days of $100.00 = 3870.967..¢
    assert_eq!(usd(10_000).mul_ratio(12, 31, Rounding::HalfEven), Ok(usd(3871)));
    assert_eq!(usd(10_000).mul_ratio(12, 31, Rounding::Floor), Ok(usd(3870)));
    assert_eq!(usd(-10_000).mul_ratio(12, 31, Rounding::Floor), Ok(usd(-3871)));
    // A tie: 5¢ × 1/2 under the two common modes.
    assert_eq!(usd(5).mul_ratio(1, 2, Rounding::HalfEven), Ok(usd(2)));
    assert_eq!(usd(5).mul_ratio(1, 2, Rounding::HalfAwayFromZero), Ok(usd(3)));
    assert_eq!(usd(5).mul_ratio(1, 0, Rounding::HalfEven), Err(MoneyError::ZeroDenominator { what: "rate" }));
    // i64 × i64 is exact in the intermediate: MAX × MAX / MAX.
    assert_eq!(usd(i64::MAX).mul_ratio(i64::MAX, i64::MAX, Rounding::HalfEven), Ok(usd(i64::MAX)));
}

#[test]
fn serde_form_is_minor_and_currency() {
    let m = Money::from_minor(123_450, USD);
    assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"minor":123450,"currency":"USD"}"#);
    assert_eq!(
        serde_json::from_str::<Money>(r#"{"minor":-1,"currency":"jpy"}"#).unwrap(),
        Money::from_minor(-1, Currency::JPY)
    );
    for bad in [
        r#"{"minor":1.5,"currency":"USD"}"#,
        r#"{"minor":1,"currency":"XYZ"}"#,
        r#"{"minor":1}"#,
        r#"{"minor":1,"currency":"USD","formatted":"$0.01"}"#,
        r#"{"minor":9223372036854775808,"currency":"USD"}"#,
    ] {
        assert!(serde_json::from_str::<Money>(bad).is_err(), "{bad}");
    }
}

#[test]
fn bad_input_is_told_apart_from_server_side_failures() {
    assert!(Money::parse("1.005", USD).unwrap_err().is_bad_input());
    assert!(crate::Currency::from_code("XYZ").unwrap_err().is_bad_input());
    assert!(usd(1).split(0).unwrap_err().is_bad_input());
    assert!(!usd(i64::MAX).checked_add(usd(1)).unwrap_err().is_bad_input());
    assert!(!usd(1).checked_add(Money::from_minor(1, Currency::EUR)).unwrap_err().is_bad_input());
}
