//! The one decimal-text lexer behind amount and rate parsing: sign, integer digits, fraction digits.
//!
//! Accepted: an optional leading `-` or `+`, one or more ASCII digits, then optionally `.` and one
//! or more digits. That is exactly PostgreSQL's NUMERIC text output and what a JSON client or a CSV
//! export sends. Refused, each with its own error: grouping commas (ambiguous across locales:
//! "1,234" is 1.234 in German), exponents, NaN/Infinity, whitespace, currency symbols.

use crate::error::{echo, MoneyError};

/// A lexed decimal: `int` and `frac` are non-empty-or-absent runs of ASCII digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecimalText<'a> {
    pub(crate) negative: bool,
    pub(crate) int: &'a str,
    /// Empty when the input had no decimal point.
    pub(crate) frac: &'a str,
}

pub(crate) fn lex<'a>(what: &'static str, input: &'a str) -> Result<DecimalText<'a>, MoneyError> {
    let (Some(first), Some(last)) = (input.chars().next(), input.chars().next_back()) else {
        return Err(MoneyError::Empty { what });
    };
    if first.is_whitespace() || last.is_whitespace() {
        return Err(MoneyError::Whitespace { what, input: echo(input) });
    }
    let (negative, body) = match input.as_bytes()[0] {
        b'-' => (true, &input[1..]),
        b'+' => (false, &input[1..]),
        _ => (false, input),
    };
    if ["nan", "inf", "infinity"].iter().any(|w| body.eq_ignore_ascii_case(w)) {
        return Err(MoneyError::NotFinite { what, input: echo(input) });
    }
    let sign_len = input.len() - body.len();
    let mut point = None;
    for (i, ch) in body.char_indices() {
        match ch {
            '0'..='9' => {}
            '.' if point.is_none() => point = Some(i),
            ',' => return Err(MoneyError::GroupingSeparator { what, input: echo(input) }),
            'e' | 'E' if body[..i].bytes().any(|b| b.is_ascii_digit()) => {
                return Err(MoneyError::Exponent { what, input: echo(input) })
            }
            _ => {
                let position = input[..sign_len + i].chars().count() + 1;
                return Err(MoneyError::InvalidCharacter { what, input: echo(input), ch, position });
            }
        }
    }
    let (int, frac) = match point {
        Some(p) => (&body[..p], &body[p + 1..]),
        None => (body, ""),
    };
    if int.is_empty() || (point.is_some() && frac.is_empty()) {
        return Err(MoneyError::MissingDigits { what, input: echo(input) });
    }
    Ok(DecimalText { negative, int, frac })
}
