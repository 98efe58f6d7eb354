//! `MoneyError`: every way parsing, arithmetic or allocation can refuse, each naming the fix.

use crate::Currency;

/// Why a money operation was refused. Nothing in keel-money panics or wraps; it returns one of these.
///
/// [`MoneyError::is_bad_input`] splits them for an HTTP edge: parse, currency, rate and allocation
/// errors are the caller's (400/422); `CurrencyMismatch` and `Overflow` in server-side sums are not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    #[error("unknown currency code {code:?}: expected a supported three-letter ISO 4217 code such as USD, EUR or JPY")]
    UnknownCurrency { code: String },

    #[error("{what} is empty: send digits with an optional '.' decimal point, e.g. 1234.50")]
    Empty { what: &'static str },

    #[error("{what} {input:?} has leading or trailing whitespace: send the bare number, e.g. 1234.50")]
    Whitespace { what: &'static str, input: String },

    #[error("{what} {input:?} contains the grouping separator ',': send digits with an optional '.' decimal point and no grouping, e.g. 1234.50")]
    GroupingSeparator { what: &'static str, input: String },

    #[error("{what} {input:?} uses exponent notation: write the digits out, e.g. 1500 instead of 1.5e3")]
    Exponent { what: &'static str, input: String },

    #[error("{what} {input:?} is not a finite number")]
    NotFinite { what: &'static str, input: String },

    #[error("{what} {input:?} has {ch:?} at position {position}: only digits, one leading '-' or '+' and one '.' are allowed")]
    InvalidCharacter { what: &'static str, input: String, ch: char, position: usize },

    #[error("{what} {input:?} needs digits on both sides of the decimal point (write 0.5 rather than .5, and 5 or 5.0 rather than 5.)")]
    MissingDigits { what: &'static str, input: String },

    #[error("amount {input:?} has {places} decimal places but {currency} allows {allowed}: pass a rounding mode or send minor units")]
    ExcessPrecision { input: String, places: usize, currency: Currency, allowed: u8 },

    #[error(
        "amount {input:?} is out of range for {currency}: at most 9223372036854775807 minor units either side of zero"
    )]
    OutOfRange { input: String, currency: Currency },

    #[error("rate {input:?} does not fit: at most 18 decimal places, and numerator and denominator within i64")]
    RateOutOfRange { input: String },

    #[error(
        "cannot {op} {left} and {right}: amounts in different currencies are never combined; convert explicitly first"
    )]
    CurrencyMismatch { op: &'static str, left: Currency, right: Currency },

    #[error("{op} overflowed: the result does not fit in i64 minor units")]
    Overflow { op: &'static str },

    #[error("{what} has a zero denominator")]
    ZeroDenominator { what: &'static str },

    #[error("cannot allocate: {reason}")]
    InvalidAllocation { reason: &'static str },
}

impl MoneyError {
    /// True when the caller's input is at fault (bad text, unknown currency, bad ratios, a value out
    /// of range): an HTTP edge answers 400/422. False for mismatches and overflows in server-side
    /// arithmetic, which are bugs or data problems (500).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, MoneyError::CurrencyMismatch { .. } | MoneyError::Overflow { .. })
    }
}

/// Echoes user input into an error message, cut short so a megabyte of garbage does not become a
/// megabyte of log line.
pub(crate) fn echo(input: &str) -> String {
    const MAX: usize = 48;
    match input.char_indices().nth(MAX) {
        None => input.to_string(),
        Some((cut, _)) => format!("{}…", &input[..cut]),
    }
}
