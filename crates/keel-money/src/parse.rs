//! Decimal text to minor units, exactly, with a rounding mode only when the caller gives one.

use crate::decimal::lex;
use crate::error::{echo, MoneyError};
use crate::rounding::{Dropped, Rounding};
use crate::Currency;

/// |i64::MIN|: the largest magnitude an i64 can hold (on the negative side).
const LIMIT: u128 = 1 << 63;

/// Parses `input` into minor units of `currency`.
///
/// Digits past the currency's exponent are fine while they are zeros ("1.500" USD is 150, as a
/// NUMERIC(12,3) column prints it); a non-zero one needs `rounding`, else `ExcessPrecision`.
pub(crate) fn parse_minor(input: &str, currency: Currency, rounding: Option<Rounding>) -> Result<i64, MoneyError> {
    let text = lex("amount", input)?;
    let exp = usize::from(currency.exponent());
    let out_of_range = || MoneyError::OutOfRange { input: echo(input), currency };

    let (kept, dropped) = if text.frac.len() > exp { text.frac.split_at(exp) } else { (text.frac, "") };
    let padding = std::iter::repeat_n(b'0', exp - kept.len());
    let mut magnitude: u128 = 0;
    for digit in text.int.bytes().chain(kept.bytes()).chain(padding) {
        magnitude = magnitude * 10 + u128::from(digit - b'0');
        // Checked per digit (scaling only grows it), so a thousand-digit input stops early.
        if magnitude > LIMIT {
            return Err(out_of_range());
        }
    }

    let dropped_class = classify(dropped);
    if dropped_class != Dropped::Zero {
        let Some(mode) = rounding else {
            return Err(MoneyError::ExcessPrecision {
                input: echo(input),
                places: exp + dropped.trim_end_matches('0').len(),
                currency,
                allowed: currency.exponent(),
            });
        };
        if mode.bump(text.negative, magnitude % 2 == 1, dropped_class) {
            magnitude += 1;
        }
    }

    if text.negative {
        if magnitude > LIMIT {
            return Err(out_of_range());
        }
        // LIMIT itself is i64::MIN, which has no positive twin; go through i128.
        i64::try_from(-(magnitude as i128)).map_err(|_| out_of_range())
    } else {
        i64::try_from(magnitude).map_err(|_| out_of_range())
    }
}

/// Where the digits beyond the currency's exponent lie relative to half a minor unit.
fn classify(dropped: &str) -> Dropped {
    let bytes = dropped.as_bytes();
    let Some(&first) = bytes.first() else { return Dropped::Zero };
    let rest_nonzero = bytes[1..].iter().any(|&b| b != b'0');
    match first {
        b'0' if !rest_nonzero => Dropped::Zero,
        b'0'..=b'4' => Dropped::BelowHalf,
        b'5' if !rest_nonzero => Dropped::Half,
        _ => Dropped::AboveHalf,
    }
}
