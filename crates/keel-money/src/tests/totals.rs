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
