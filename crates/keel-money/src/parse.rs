//! Decimal text to minor units, exactly, with a rounding mode only when the caller gives one.

use crate::decimal::lex;
use crate::error::{echo, MoneyError};
use crate::rounding::{Dropped, Rounding};
use crate::Currency;

/// |i64::MIN|: the largest magnitude an i64 can hold (on the negative side).
const LIMIT: u64 = 1 << 63;

/// Parses `input` into minor units of `currency`.
///
/// Digits past the currency's exponent are fine while they are zeros ("1.500" USD is 150, as a
/// NUMERIC(12,3) column prints it); a non-zero one needs `rounding`, else `ExcessPrecision`.
#[inline]
pub(crate) fn parse_minor(input: &str, currency: Currency, rounding: Option<Rounding>) -> Result<i64, MoneyError> {
    let exp = usize::from(currency.exponent());
    match parse_common(input.as_bytes(), exp) {
        Some(minor) => Ok(minor),
        None => parse_general(input, currency, rounding),
    }
}

/// Every input `parse_common` passes on: long or zero-padded numbers, rounding, and all errors.
#[inline(never)]
pub(crate) fn parse_general(input: &str, currency: Currency, rounding: Option<Rounding>) -> Result<i64, MoneyError> {
    let exp = usize::from(currency.exponent());
    let text = lex("amount", input)?;
    let out_of_range = || MoneyError::OutOfRange { input: echo(input), currency };

    let (kept, dropped) = if text.frac.len() > exp { text.frac.split_at(exp) } else { (text.frac, "") };
    let digits = text.int.as_bytes().iter().chain(kept.as_bytes()).chain(std::iter::repeat_n(&b'0', exp - kept.len()));
    let magnitude = if text.int.len() + exp <= 18 {
        // At most 18 digits stay below 10^18 < 2^63: no check needed on the common path.
        digits.fold(0u64, |m, &d| m * 10 + u64::from(d - b'0'))
    } else {
        let mut m: u64 = 0;
        for &d in digits {
            // Checked per digit (scaling only grows it), so a thousand-digit input stops early.
            m = match m.checked_mul(10).and_then(|m| m.checked_add(u64::from(d - b'0'))) {
                Some(m) if m <= LIMIT => m,
                _ => return Err(out_of_range()),
            };
        }
        m
    };
    let mut magnitude = magnitude;

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
            // magnitude <= 2^63 here, so this cannot overflow u64; the range check follows.
            magnitude += 1;
        }
    }

    if text.negative {
        // LIMIT itself is i64::MIN, which has no positive twin; go through i128.
        i64::try_from(-i128::from(magnitude)).map_err(|_| out_of_range())
    } else {
        i64::try_from(magnitude).map_err(|_| out_of_range())
    }
}

/// One pass for the shape nearly every input has: `-?\d{1,18-exp}(\.\d{1,exp})?`, which is
/// exact and cannot overflow. `None` sends anything else (errors included) to the general path,
/// which accepts the same language, so this only changes speed; the property tests cover both.
#[inline]
pub(crate) fn parse_common(bytes: &[u8], exp: usize) -> Option<i64> {
    let (negative, mut i) = match bytes.first()? {
        b'-' => (true, 1),
        _ => (false, 0),
    };
    let mut magnitude: u64 = 0;
    let int_start = i;
    while let Some(&b @ b'0'..=b'9') = bytes.get(i) {
        magnitude = magnitude * 10 + u64::from(b - b'0');
        i += 1;
        if i - int_start > 18 - exp {
            return None;
        }
    }
    if i == int_start {
        return None;
    }
    let mut places = 0;
    if i < bytes.len() {
        if bytes[i] != b'.' {
            return None;
        }
        i += 1;
        while let Some(&b @ b'0'..=b'9') = bytes.get(i) {
            if places == exp {
                return None;
            }
            magnitude = magnitude * 10 + u64::from(b - b'0');
            places += 1;
            i += 1;
        }
        if places == 0 || i != bytes.len() {
            return None;
        }
    }
    for _ in places..exp {
        magnitude *= 10;
    }
    // At most 18 digits: below 10^18 < 2^63, so the cast is exact.
    let minor = magnitude as i64;
    Some(if negative { -minor } else { minor })
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
