//! Tests for `Rounding` and `div_round`: the table in the type's docs, tie by tie.

use crate::rounding::div_round;
use crate::Rounding;

/// n/2 for n = 5, 7, -5, then n/10 for n = 24, -24: 2.5, 3.5, -2.5, 2.4, -2.4.
fn row(mode: Rounding) -> [i128; 5] {
    [
        div_round(5, 2, mode),
        div_round(7, 2, mode),
        div_round(-5, 2, mode),
        div_round(24, 10, mode),
        div_round(-24, 10, mode),
    ]
}

#[test]
fn every_mode_matches_the_documented_table() {
    assert_eq!(row(Rounding::HalfEven), [2, 4, -2, 2, -2]);
    assert_eq!(row(Rounding::HalfAwayFromZero), [3, 4, -3, 2, -2]);
    assert_eq!(row(Rounding::HalfTowardZero), [2, 3, -2, 2, -2]);
    assert_eq!(row(Rounding::Floor), [2, 3, -3, 2, -3]);
    assert_eq!(row(Rounding::Ceiling), [3, 4, -2, 3, -2]);
    assert_eq!(row(Rounding::TowardZero), [2, 3, -2, 2, -2]);
    assert_eq!(row(Rounding::AwayFromZero), [3, 4, -3, 3, -3]);
}

#[test]
fn above_half_rounds_away_under_half_modes_and_exact_division_never_moves() {
    for mode in Rounding::ALL {
        assert_eq!(div_round(12, 4, mode), 3, "{mode}");
        assert_eq!(div_round(-12, 4, mode), -3, "{mode}");
        assert_eq!(div_round(0, 7, mode), 0, "{mode}");
    }
    for mode in [Rounding::HalfEven, Rounding::HalfAwayFromZero, Rounding::HalfTowardZero] {
        assert_eq!(div_round(26, 10, mode), 3, "{mode}");
        assert_eq!(div_round(-26, 10, mode), -3, "{mode}");
    }
}

#[test]
fn extreme_operands_stay_exact() {
    let big = i128::from(i64::MAX) * i128::from(i64::MAX);
    assert_eq!(div_round(big, i128::from(i64::MAX), Rounding::HalfEven), i128::from(i64::MAX));
    let min = i128::from(i64::MIN) * i128::from(i64::MAX);
    assert_eq!(div_round(min, i128::from(i64::MAX), Rounding::Floor), i128::from(i64::MIN));
}

#[test]
fn names_parse_and_serialize_in_snake_case() {
    for mode in Rounding::ALL {
        assert_eq!(mode.name().parse::<Rounding>(), Ok(mode));
        assert_eq!(serde_json::to_string(&mode).unwrap(), format!("\"{}\"", mode.name()));
        assert_eq!(serde_json::from_str::<Rounding>(&format!("\"{}\"", mode.name())).unwrap(), mode);
    }
    let err = "banker".parse::<Rounding>().unwrap_err();
    assert_eq!(err.got, "banker");
    assert!(err.to_string().contains("half_even"), "{err}");
}
