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
    let bytes = input.as_bytes();
    let (negative, start) = match bytes.first() {
        None => return Err(MoneyError::Empty { what }),
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        Some(_) => (false, 0),
    };
    // The happy path is one pass over ASCII bytes; anything else is diagnosed by `refuse`.
    let mut point = None;
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        match b {
            b'0'..=b'9' => {}
            b'.' if point.is_none() => point = Some(i),
            _ => return Err(refuse(what, input, start, i)),
        }
    }
    let (int, frac) = match point {
        Some(p) => (&input[start..p], &input[p + 1..]),
        None => (&input[start..], ""),
    };
    if int.is_empty() || (point.is_some() && frac.is_empty()) {
        return Err(MoneyError::MissingDigits { what, input: echo(input) });
    }
    Ok(DecimalText { negative, int, frac })
}

/// Names what is wrong with `input`, whose byte `at` (after the sign, which ends at `start`) is
/// the first one the lexer could not accept. Every byte before `at` is ASCII, so `at` is a char
/// boundary.
#[cold]
fn refuse(what: &'static str, input: &str, start: usize, at: usize) -> MoneyError {
    let body = &input[start..];
    let starts_or_ends_blank = input.chars().next().is_some_and(char::is_whitespace)
        || input.chars().next_back().is_some_and(char::is_whitespace);
    if starts_or_ends_blank {
        return MoneyError::Whitespace { what, input: echo(input) };
    }
    if ["nan", "inf", "infinity"].iter().any(|w| body.eq_ignore_ascii_case(w)) {
        return MoneyError::NotFinite { what, input: echo(input) };
    }
    let ch = input[at..].chars().next().unwrap_or('\u{FFFD}');
    match ch {
        ',' => MoneyError::GroupingSeparator { what, input: echo(input) },
        'e' | 'E' if at > start && input.as_bytes()[at - 1].is_ascii_digit() => {
            MoneyError::Exponent { what, input: echo(input) }
        }
        _ => MoneyError::InvalidCharacter { what, input: echo(input), ch, position: at + 1 },
    }
}
