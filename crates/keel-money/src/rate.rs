//! `Rate`: an exact rational multiplier (tax rate, discount, pro-rata share) for `Money::mul_rate`.

use crate::decimal::lex;
use crate::error::{echo, MoneyError};
use std::fmt;

/// `numer / denom` with `denom > 0`. Rates stay exact fractions, never floats: "8.875" percent is
/// 8875/100000, and rounding happens once, in [`crate::Money::mul_rate`], under an explicit mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    numer: i64,
    denom: i64,
}

impl Rate {
    /// `numer / denom`; a negative denominator flips both signs, zero is refused.
    pub fn new(numer: i64, denom: i64) -> Result<Rate, MoneyError> {
        match denom {
            0 => Err(MoneyError::ZeroDenominator { what: "rate" }),
            d if d > 0 => Ok(Rate { numer, denom: d }),
            d => match (numer.checked_neg(), d.checked_neg()) {
                (Some(numer), Some(denom)) => Ok(Rate { numer, denom }),
                _ => Err(MoneyError::Overflow { op: "normalise rate" }),
            },
        }
    }

    /// Basis points: 725 is 7.25 %.
    pub fn from_basis_points(bp: i64) -> Rate {
        Rate { numer: bp, denom: 10_000 }
    }

    /// A percentage as decimal text: "8.875" is 8.875 % (0.08875).
    pub fn parse_percent(input: &str) -> Result<Rate, MoneyError> {
        parse(input, 2)
    }

    /// A plain factor as decimal text: "1.0825" multiplies by 1.0825.
    pub fn parse_factor(input: &str) -> Result<Rate, MoneyError> {
        parse(input, 0)
    }

    /// The numerator (carries the sign).
    pub fn numer(self) -> i64 {
        self.numer
    }

    /// The denominator, always positive.
    pub fn denom(self) -> i64 {
        self.denom
    }
}

/// Decimal text to `digits / 10^(places + extra_places)`, trailing zeros dropped first so "7.50"
/// and "7.5" are the same rate.
fn parse(input: &str, extra_places: u32) -> Result<Rate, MoneyError> {
    let text = lex("rate", input)?;
    let frac = text.frac.trim_end_matches('0');
    let out_of_range = || MoneyError::RateOutOfRange { input: echo(input) };
    let places = u32::try_from(frac.len()).map_err(|_| out_of_range())? + extra_places;
    let denom = 10i64.checked_pow(places).ok_or_else(out_of_range)?;
    let mut numer: i64 = 0;
    for digit in text.int.bytes().chain(frac.bytes()) {
        numer = numer.checked_mul(10).and_then(|n| n.checked_add(i64::from(digit - b'0'))).ok_or_else(out_of_range)?;
    }
    Ok(Rate { numer: if text.negative { -numer } else { numer }, denom })
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.numer, self.denom)
    }
}
