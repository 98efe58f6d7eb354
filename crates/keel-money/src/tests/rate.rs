//! Tests for `Rate`: exact fractions from percent and factor text, and their refusals.

use crate::{MoneyError, Rate};

#[test]
fn percent_and_factor_text_become_exact_fractions() {
    let p = Rate::parse_percent("8.875").unwrap();
    assert_eq!((p.numer(), p.denom()), (8875, 100_000));
    let p = Rate::parse_percent("7.50").unwrap();
    assert_eq!((p.numer(), p.denom()), (75, 1000));
    let f = Rate::parse_factor("1.0825").unwrap();
    assert_eq!((f.numer(), f.denom()), (10825, 10_000));
    let f = Rate::parse_factor("-2").unwrap();
    assert_eq!((f.numer(), f.denom()), (-2, 1));
    let bp = Rate::from_basis_points(725);
    assert_eq!((bp.numer(), bp.denom()), (725, 10_000));
    assert_eq!(bp.to_string(), "725/10000");
}

#[test]
fn new_normalises_the_sign_and_refuses_zero() {
    let r = Rate::new(3, -4).unwrap();
    assert_eq!((r.numer(), r.denom()), (-3, 4));
    assert_eq!(Rate::new(1, 0), Err(MoneyError::ZeroDenominator { what: "rate" }));
    assert_eq!(Rate::new(1, i64::MIN), Err(MoneyError::Overflow { op: "normalise rate" }));
}

#[test]
fn rates_beyond_i64_or_18_places_are_refused_by_name() {
    for input in ["0.0000000000000000001", "99999999999999999999", "0.00000000000000001"] {
        let err = Rate::parse_percent(input).unwrap_err();
        assert_eq!(err, MoneyError::RateOutOfRange { input: input.into() }, "{input}");
    }
    assert!(Rate::parse_factor("0.000000000000000001").is_ok());
    let err = Rate::parse_factor("8%").unwrap_err();
    assert_eq!(err, MoneyError::InvalidCharacter { what: "rate", input: "8%".into(), ch: '%', position: 2 });
    assert!(err.to_string().starts_with("rate \"8%\""), "{err}");
}
