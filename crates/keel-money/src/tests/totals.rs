//! Tests for `Totals`: per-currency exact sums and counts, merge, and the final range check.

use crate::{Currency, CurrencyTotal, ExactTotals, Money, MoneyError, Totals};

#[test]
fn currencies_are_totalled_separately_and_ordered_by_code() {
    let mut t = Totals::new();
    for (minor, c) in [(100, Currency::USD), (5, Currency::JPY), (-30, Currency::USD), (250, Currency::EUR)] {
        t.add(Money::from_minor(minor, c)).unwrap();
    }
    assert_eq!(t.rows(), 4);
    let done = t.finish().unwrap();
    assert_eq!(done.rows, 4);
    let got: Vec<(Currency, i64, u64)> =
        done.per_currency.iter().map(|ct| (ct.total.currency(), ct.total.minor(), ct.count)).collect();
    assert_eq!(got, [(Currency::EUR, 250, 1), (Currency::JPY, 5, 1), (Currency::USD, 70, 2)]);
    assert_eq!(done.total_in(Currency::USD), Money::from_minor(70, Currency::USD));
    assert_eq!(done.total_in(Currency::GBP), Money::zero(Currency::GBP));
    assert!(done.get(Currency::GBP).is_none());
}

#[test]
fn intermediate_sums_may_exceed_i64_but_the_final_total_may_not() {
    let usd = |m| Money::from_minor(m, Currency::USD);
    let mut t = Totals::new();
    t.add(usd(i64::MAX)).unwrap();
    t.add(usd(i64::MAX)).unwrap();
    assert_eq!(t.finish(), Err(MoneyError::Overflow { op: "total" }));
    t.add(usd(-i64::MAX)).unwrap();
    assert_eq!(t.finish().unwrap().total_in(Currency::USD), usd(i64::MAX));
}

#[test]
fn merge_combines_tallies_exactly() {
    let mut a = Totals::new();
    a.add(Money::from_minor(1, Currency::USD)).unwrap();
    let mut b = Totals::new();
    b.add(Money::from_minor(2, Currency::USD)).unwrap();
    b.add(Money::from_minor(3, Currency::KWD)).unwrap();
    a.merge(&b).unwrap();
    let done = a.finish().unwrap();
    assert_eq!(done.rows, 3);
    assert_eq!(done.get(Currency::USD), Some(&CurrencyTotal { total: Money::from_minor(3, Currency::USD), count: 2 }));
    assert_eq!(done.total_in(Currency::KWD).minor(), 3);
}

#[test]
fn empty_source_is_an_explicit_empty_total() {
    assert_eq!(Totals::new().finish(), Ok(ExactTotals::default()));
}

#[test]
fn serde_form_carries_minor_formatted_plain_and_count() {
    let ct = CurrencyTotal { total: Money::from_minor(123_450, Currency::USD), count: 3 };
    assert_eq!(
        serde_json::to_string(&ct).unwrap(),
        r#"{"currency":"USD","minor":123450,"formatted":"$1,234.50","plain":"1234.50","count":3}"#
    );
}

#[test]
fn wide_totals_hold_sums_past_i64_and_render_them_exactly() {
    let usd = |m| Money::from_minor(m, Currency::USD);
    let mut t = Totals::new();
    for _ in 0..3 {
        t.add(usd(i64::MAX)).unwrap();
    }
    t.add(Money::from_minor(-7, Currency::KWD)).unwrap();
    let wide = t.finish_wide();
    assert_eq!(wide.rows, 4);
    let total = wide.get(Currency::USD).unwrap();
    assert_eq!(total.minor, 3 * i128::from(i64::MAX));
    assert_eq!(total.count, 3);
    assert!(total.to_money().is_err(), "past i64 it is no Money");
    assert_eq!(total.plain(), "276701161105643274.21");
    assert_eq!(total.formatted(), "$276,701,161,105,643,274.21");
    let json = serde_json::to_string(total).unwrap();
    assert_eq!(
        json,
        r#"{"currency":"USD","minor":27670116110564327421,"formatted":"$276,701,161,105,643,274.21","plain":"276701161105643274.21","count":3}"#
    );
    let kwd = wide.get(Currency::KWD).unwrap();
    assert_eq!((kwd.formatted(), kwd.plain()), ("-KWD 0.007".to_owned(), "-0.007".to_owned()));
    // The wide forms agree with Money's wherever Money can hold the total.
    let m = Money::from_minor(-123_456_789, Currency::EUR);
    let mut t = Totals::new();
    t.add(m).unwrap();
    let w = t.finish_wide().per_currency[0];
    assert_eq!((w.formatted(), w.plain()), (m.to_string(), m.plain().to_string()));
    assert_eq!(w.to_money().unwrap(), m);
    // Projections round once, as Money's do.
    let p = w.mul_ratio(31, 7, crate::Rounding::HalfEven).unwrap();
    assert_eq!(p.to_money().unwrap(), m.mul_ratio(31, 7, crate::Rounding::HalfEven).unwrap());
    assert!(w.mul_ratio(1, 0, crate::Rounding::HalfEven).is_err());
}

#[test]
fn the_largest_sum_a_u64_count_of_i64_amounts_can_make_fits_i128() {
    // The bound WideTotal relies on: |sum| <= u64::MAX * 2^63 < i128::MAX.
    let worst = i128::from(u64::MAX).checked_mul(1i128 << 63).unwrap();
    assert!(worst < i128::MAX);
}
