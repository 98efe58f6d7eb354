//! Rendering: the grouped display form (`$1,234.50`) and the plain export form (`1234.50`).
//!
//! Display rules, fixed rather than locale-dependent so a report reads the same everywhere:
//! a leading minus for negatives (`-$0.01`, never accounting parentheses, which spreadsheets and
//! screen readers misread); the currency's symbol where unambiguous, else its code and a space
//! (`CHF 1,234.50`); comma thousands grouping; a '.' decimal point; always exactly `exponent`
//! decimals (`$5.00`, `¥1,235`, `KWD 1.500`).

use crate::{Currency, Money};
use std::fmt::{self, Write};

/// Appends `|minor|` as decimal text with `exponent` decimals, grouping the integer part if asked.
/// u128, so wide totals ([`crate::WideTotal`]) render by the same rules as single amounts.
fn push_digits(out: &mut String, magnitude: u128, exponent: u8, grouped: bool) {
    let scale = 10u128.pow(u32::from(exponent));
    let (int, frac) = (magnitude / scale, magnitude % scale);
    let digits = int.to_string();
    if grouped {
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
    } else {
        out.push_str(&digits);
    }
    if exponent > 0 {
        // Writing into a String cannot fail.
        let _ = write!(out, ".{frac:0width$}", width = usize::from(exponent));
    }
}

/// The display form (`$1,234.50`) of `minor` units of `currency`, for any width of integer.
pub(crate) fn display(minor: i128, currency: Currency) -> String {
    let mut out = String::with_capacity(32);
    if minor < 0 {
        out.push('-');
    }
    match currency.symbol() {
        Some(symbol) => out.push_str(symbol),
        None => {
            out.push_str(currency.code());
            out.push(' ');
        }
    }
    push_digits(&mut out, minor.unsigned_abs(), currency.exponent(), true);
    out
}

/// The plain export form (`1234.50`) of `minor` units of `currency`, for any width of integer.
pub(crate) fn plain(minor: i128, currency: Currency) -> String {
    let mut out = String::with_capacity(24);
    if minor < 0 {
        out.push('-');
    }
    push_digits(&mut out, minor.unsigned_abs(), currency.exponent(), false);
    out
}

impl fmt::Display for Money {
    /// `$1,234.50`, `-$0.01`, `¥1,235`, `CHF 1,234.50`. Honours width/alignment (`{:>12}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&display(i128::from(self.minor()), self.currency()))
    }
}

/// The plain export form of an amount: no symbol, no grouping, '.' decimal point, exactly the
/// currency's decimals (`1234.50`, `-0.01`, `1235`, `1.500`). What CSV wants next to a currency
/// column, and exactly what [`Money::parse`] reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainAmount(Money);

impl Money {
    /// The plain export form; `m.plain().to_string()` is "1234.50".
    pub fn plain(self) -> PlainAmount {
        PlainAmount(self)
    }
}

impl fmt::Display for PlainAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&plain(i128::from(self.0.minor()), self.0.currency()))
    }
}
