//! `Rounding`: the explicit rounding mode every lossy boundary takes, and integer division under it.

use std::fmt;
use std::str::FromStr;

/// How to drop digits the currency cannot hold. There is no default: each boundary (parsing, rates,
/// ratios) names its mode, because the two common ones disagree on ties.
///
/// | mode | 2.5 | 3.5 | -2.5 | 2.4 | -2.4 |
/// |---|---|---|---|---|---|
/// | `HalfEven` (banker's; rust_decimal `round_dp`) | 2 | 4 | -2 | 2 | -2 |
/// | `HalfAwayFromZero` (PostgreSQL `round(numeric)`) | 3 | 4 | -3 | 2 | -2 |
/// | `HalfTowardZero` | 2 | 3 | -2 | 2 | -2 |
/// | `Floor` (toward -inf) | 2 | 3 | -3 | 2 | -3 |
/// | `Ceiling` (toward +inf) | 3 | 4 | -2 | 3 | -2 |
/// | `TowardZero` (truncate) | 2 | 3 | -2 | 2 | -2 |
/// | `AwayFromZero` | 3 | 4 | -3 | 3 | -3 |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Ties to the even neighbour (banker's rounding; rust_decimal's `round_dp`).
    HalfEven,
    /// Ties away from zero (PostgreSQL's `round(numeric)`, school rounding).
    HalfAwayFromZero,
    /// Ties toward zero.
    HalfTowardZero,
    /// Toward negative infinity.
    Floor,
    /// Toward positive infinity.
    Ceiling,
    /// Drop the digits (truncate).
    TowardZero,
    /// Any dropped digit rounds the magnitude up.
    AwayFromZero,
}

/// Where the dropped digits lie between two adjacent representable values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Dropped {
    Zero,
    BelowHalf,
    Half,
    AboveHalf,
}

impl Rounding {
    /// Every mode, for listing them in a message or testing each.
    pub const ALL: [Rounding; 7] = [
        Rounding::HalfEven,
        Rounding::HalfAwayFromZero,
        Rounding::HalfTowardZero,
        Rounding::Floor,
        Rounding::Ceiling,
        Rounding::TowardZero,
        Rounding::AwayFromZero,
    ];

    /// The snake_case name used in serde and [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            Rounding::HalfEven => "half_even",
            Rounding::HalfAwayFromZero => "half_away_from_zero",
            Rounding::HalfTowardZero => "half_toward_zero",
            Rounding::Floor => "floor",
            Rounding::Ceiling => "ceiling",
            Rounding::TowardZero => "toward_zero",
            Rounding::AwayFromZero => "away_from_zero",
        }
    }

    /// Whether a magnitude truncated toward zero must grow by one unit.
    pub(crate) fn bump(self, negative: bool, truncated_is_odd: bool, dropped: Dropped) -> bool {
        if dropped == Dropped::Zero {
            return false;
        }
        match self {
            Rounding::TowardZero => false,
            Rounding::AwayFromZero => true,
            Rounding::Floor => negative,
            Rounding::Ceiling => !negative,
            Rounding::HalfAwayFromZero => dropped >= Dropped::Half,
            Rounding::HalfTowardZero => dropped == Dropped::AboveHalf,
            Rounding::HalfEven => dropped == Dropped::AboveHalf || (dropped == Dropped::Half && truncated_is_odd),
        }
    }
}

/// `n / d` rounded under `mode`, for `d > 0`. Exact: the caller's i128 holds any i64 × i64.
pub(crate) fn div_round(n: i128, d: i128, mode: Rounding) -> i128 {
    debug_assert!(d > 0);
    let q = n / d;
    let r = n % d;
    if r == 0 {
        return q;
    }
    let twice = r.unsigned_abs() * 2;
    let d = d.unsigned_abs();
    let dropped = match twice.cmp(&d) {
        std::cmp::Ordering::Less => Dropped::BelowHalf,
        std::cmp::Ordering::Equal => Dropped::Half,
        std::cmp::Ordering::Greater => Dropped::AboveHalf,
    };
    let negative = n < 0;
    if mode.bump(negative, q % 2 != 0, dropped) {
        if negative {
            q - 1
        } else {
            q + 1
        }
    } else {
        q
    }
}

impl fmt::Display for Rounding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Bad rounding-mode text, naming the accepted values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rounding mode {got:?}: expected one of half_even, half_away_from_zero, half_toward_zero, floor, ceiling, toward_zero, away_from_zero")]
pub struct UnknownRounding {
    /// The text given, cut to 48 characters.
    pub got: String,
}

impl FromStr for Rounding {
    type Err = UnknownRounding;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Rounding::ALL.into_iter().find(|r| r.name() == s).ok_or_else(|| UnknownRounding { got: crate::error::echo(s) })
    }
}
