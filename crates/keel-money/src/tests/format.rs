//! Tests for the display form (`$1,234.50`) and the plain export form (`1234.50`).

use crate::{Currency, Money};

fn show(minor: i64, currency: Currency) -> (String, String) {
    let m = Money::from_minor(minor, currency);
    (m.to_string(), m.plain().to_string())
}

#[test]
fn display_groups_and_uses_the_symbol_or_code() {
    assert_eq!(show(123_450, Currency::USD), ("$1,234.50".into(), "1234.50".into()));
    assert_eq!(show(-1, Currency::USD), ("-$0.01".into(), "-0.01".into()));
    assert_eq!(show(0, Currency::USD), ("$0.00".into(), "0.00".into()));
    assert_eq!(show(500, Currency::EUR), ("€5.00".into(), "5.00".into()));
    assert_eq!(show(1235, Currency::JPY), ("¥1,235".into(), "1235".into()));
    assert_eq!(show(1500, Currency::KWD), ("KWD 1.500".into(), "1.500".into()));
    assert_eq!(show(-123_456_789, Currency::CHF), ("-CHF 1,234,567.89".into(), "-1234567.89".into()));
    assert_eq!(show(100, Currency::CAD), ("CA$1.00".into(), "1.00".into()));
    assert_eq!(show(12_345, Currency::CLF), ("CLF 1.2345".into(), "1.2345".into()));
    assert_eq!(show(999, Currency::GBP), ("£9.99".into(), "9.99".into()));
    assert_eq!(show(100_000, Currency::JPY), ("¥100,000".into(), "100000".into()));
}

#[test]
fn the_extremes_render_without_overflow() {
    assert_eq!(show(i64::MIN, Currency::USD).0, "-$92,233,720,368,547,758.08");
    assert_eq!(show(i64::MAX, Currency::JPY).1, "9223372036854775807");
}

#[test]
fn width_and_alignment_apply_to_the_whole_figure() {
    let m = Money::from_minor(-1, Currency::USD);
    assert_eq!(format!("[{m:>8}]"), "[  -$0.01]");
    assert_eq!(format!("[{:<7}]", m.plain()), "[-0.01  ]");
}
