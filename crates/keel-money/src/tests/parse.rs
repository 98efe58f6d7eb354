//! Tests for decimal-text parsing: exact values, every refusal, and rounding at the boundary.

use crate::{Currency, Money, MoneyError, Rounding};

fn minor(input: &str, currency: Currency) -> i64 {
    Money::parse(input, currency).unwrap_or_else(|e| panic!("{input}: {e}")).minor()
}

#[test]
fn exact_decimal_text_parses_to_minor_units() {
    let usd = Currency::USD;
    assert_eq!(minor("1234.5", usd), 123450);
    assert_eq!(minor("1234.50", usd), 123450);
    assert_eq!(minor("-0.01", usd), -1);
    assert_eq!(minor("+3", usd), 300);
    assert_eq!(minor("0", usd), 0);
    assert_eq!(minor("-0", usd), 0);
    assert_eq!(minor("007.10", usd), 710);
    assert_eq!(minor("1235", Currency::JPY), 1235);
    assert_eq!(minor("1.5", Currency::KWD), 1500);
    assert_eq!(minor("0.001", Currency::BHD), 1);
    assert_eq!(minor("1.2345", Currency::CLF), 12345);
}

#[test]
fn numeric_text_with_zero_padding_beyond_the_exponent_is_exact() {
    // NUMERIC(20,4) prints 1234.5 as "1234.5000"; that is not extra precision.
    assert_eq!(minor("1234.5000", Currency::USD), 123450);
    assert_eq!(minor("1235.000", Currency::JPY), 1235);
    assert_eq!(minor("-0.0100000000000000000000000000", Currency::USD), -1);
}

#[test]
fn the_whole_i64_range_parses_and_one_past_it_does_not() {
    assert_eq!(minor("92233720368547758.07", Currency::USD), i64::MAX);
    assert_eq!(minor("-92233720368547758.08", Currency::USD), i64::MIN);
    assert_eq!(minor("9223372036854775807", Currency::JPY), i64::MAX);
    for input in ["92233720368547758.08", "-92233720368547758.09", "100000000000000000000000000000000000000000000"] {
        let err = Money::parse(input, Currency::USD).unwrap_err();
        assert_eq!(err, MoneyError::OutOfRange { input: input.into(), currency: Currency::USD });
        assert!(err.to_string().contains("out of range for USD"), "{err}");
    }
}

#[test]
fn excess_precision_is_refused_with_the_fix_in_the_message() {
    let err = Money::parse("1.005", Currency::USD).unwrap_err();
    assert_eq!(
        err,
        MoneyError::ExcessPrecision { input: "1.005".into(), places: 3, currency: Currency::USD, allowed: 2 }
    );
    assert_eq!(
        err.to_string(),
        "amount \"1.005\" has 3 decimal places but USD allows 2: pass a rounding mode or send minor units"
    );
    // Trailing zeros after the offending digit do not count as places.
    assert!(matches!(Money::parse("1.00500", Currency::USD), Err(MoneyError::ExcessPrecision { places: 3, .. })));
    assert!(matches!(
        Money::parse("1235.4", Currency::JPY),
        Err(MoneyError::ExcessPrecision { places: 1, allowed: 0, .. })
    ));
}

#[test]
fn rounding_mode_decides_the_dropped_digits() {
    let r = |input: &str, mode| Money::parse_rounded(input, Currency::USD, mode).unwrap().minor();
    // Ties: PostgreSQL round(numeric) goes away from zero, banker's to even.
    assert_eq!(r("1.005", Rounding::HalfAwayFromZero), 101);
    assert_eq!(r("1.005", Rounding::HalfEven), 100);
    assert_eq!(r("1.015", Rounding::HalfEven), 102);
    assert_eq!(r("-1.005", Rounding::HalfAwayFromZero), -101);
    assert_eq!(r("-1.005", Rounding::HalfEven), -100);
    // A digit after the 5 makes it more than half.
    assert_eq!(r("1.0050001", Rounding::HalfEven), 101);
    assert_eq!(r("1.0049999", Rounding::HalfAwayFromZero), 100);
    assert_eq!(r("1.001", Rounding::Ceiling), 101);
    assert_eq!(r("-1.001", Rounding::Ceiling), -100);
    assert_eq!(r("-1.001", Rounding::Floor), -101);
    assert_eq!(r("1.009", Rounding::TowardZero), 100);
    assert_eq!(r("1.001", Rounding::AwayFromZero), 101);
    assert_eq!(r("-0.001", Rounding::HalfEven), 0);
    // Exact input is untouched by any mode.
    for mode in Rounding::ALL {
        assert_eq!(r("1.23", mode), 123, "{mode}");
        assert_eq!(r("1.2300", mode), 123, "{mode}");
    }
}

#[test]
fn rounding_up_past_the_range_is_out_of_range() {
    let err = Money::parse_rounded("92233720368547758.075", Currency::USD, Rounding::HalfEven).unwrap_err();
    assert!(matches!(err, MoneyError::OutOfRange { .. }), "{err}");
    assert_eq!(
        Money::parse_rounded("-92233720368547758.075", Currency::USD, Rounding::TowardZero).unwrap().minor(),
        -9223372036854775807
    );
}

#[test]
fn malformed_text_gets_a_specific_error() {
    let usd = Currency::USD;
    let what = "amount";
    assert_eq!(Money::parse("", usd), Err(MoneyError::Empty { what }));
    assert_eq!(Money::parse(" 1.00", usd), Err(MoneyError::Whitespace { what, input: " 1.00".into() }));
    assert_eq!(Money::parse("1.00\n", usd), Err(MoneyError::Whitespace { what, input: "1.00\n".into() }));
    assert_eq!(Money::parse("1,234.50", usd), Err(MoneyError::GroupingSeparator { what, input: "1,234.50".into() }));
    assert_eq!(Money::parse("1.5e3", usd), Err(MoneyError::Exponent { what, input: "1.5e3".into() }));
    assert_eq!(Money::parse("NaN", usd), Err(MoneyError::NotFinite { what, input: "NaN".into() }));
    assert_eq!(Money::parse("-Infinity", usd), Err(MoneyError::NotFinite { what, input: "-Infinity".into() }));
    assert_eq!(
        Money::parse("$12", usd),
        Err(MoneyError::InvalidCharacter { what, input: "$12".into(), ch: '$', position: 1 })
    );
    assert_eq!(
        Money::parse("-12€", usd),
        Err(MoneyError::InvalidCharacter { what, input: "-12€".into(), ch: '€', position: 4 })
    );
    assert_eq!(
        Money::parse("1.2.3", usd),
        Err(MoneyError::InvalidCharacter { what, input: "1.2.3".into(), ch: '.', position: 4 })
    );
    assert_eq!(
        Money::parse("--1", usd),
        Err(MoneyError::InvalidCharacter { what, input: "--1".into(), ch: '-', position: 2 })
    );
    assert_eq!(
        Money::parse("e5", usd),
        Err(MoneyError::InvalidCharacter { what, input: "e5".into(), ch: 'e', position: 1 })
    );
    for input in [".5", "5.", "-", "+", "-.5", "."] {
        assert_eq!(Money::parse(input, usd), Err(MoneyError::MissingDigits { what, input: input.into() }), "{input}");
    }
}

#[test]
fn error_messages_name_the_problem_and_the_fix() {
    let msg = |input: &str| Money::parse(input, Currency::USD).unwrap_err().to_string();
    assert_eq!(msg(""), "amount is empty: send digits with an optional '.' decimal point, e.g. 1234.50");
    assert!(msg("1,234.50").contains("no grouping, e.g. 1234.50"));
    assert!(msg("1e3").contains("write the digits out"));
    assert!(msg("$1").contains("'$' at position 1"));
    assert!(msg(".5").contains("write 0.5 rather than .5"));
}

#[test]
fn huge_garbage_is_echoed_cut_short() {
    let input = "x".repeat(10_000);
    let MoneyError::InvalidCharacter { input: echoed, .. } = Money::parse(&input, Currency::USD).unwrap_err() else {
        panic!("expected InvalidCharacter");
    };
    assert_eq!(echoed.chars().count(), 49);
    assert!(echoed.ends_with('…'));
}

proptest::proptest! {
    /// The one-pass fast path may decline any input, but what it accepts must agree with the
    /// general parser, in every currency.
    #[test]
    fn fast_path_agrees_with_the_general_parser(input in "[-+]?[0-9]{0,20}(\\.[0-9]{0,6})?x?") {
        for c in Currency::all() {
            let exp = usize::from(c.exponent());
            if let Some(fast) = crate::parse::parse_common(input.as_bytes(), exp) {
                proptest::prop_assert_eq!(crate::parse::parse_general(&input, c, None), Ok(fast), "{} {}", input, c);
            }
        }
    }
}
