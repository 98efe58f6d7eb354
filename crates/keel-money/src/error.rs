//! `MoneyError`: every way parsing, arithmetic or allocation can refuse, each naming the fix.

use crate::Currency;

/// Why a money operation was refused. Nothing in keel-money panics or wraps; it returns one of these.
///
/// [`MoneyError::is_bad_input`] splits them for an HTTP edge: parse, currency, rate and allocation
/// errors are the caller's (400/422); `CurrencyMismatch` and `Overflow` in server-side sums are not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    /// A currency code not in the table.
    #[error("unknown currency code {code:?}: expected a supported three-letter ISO 4217 code such as USD, EUR or JPY")]
    UnknownCurrency {
        /// The code as given, cut to 48 characters.
        code: String,
    },

    /// Empty text where a number was expected.
    #[error("{what} is empty: send digits with an optional '.' decimal point, e.g. 1234.50")]
    Empty {
        /// What was being parsed: `amount` or `rate`.
        what: &'static str,
    },

    /// Spaces around the number (refused rather than trimmed: the caller should send clean input).
    #[error("{what} {input:?} has leading or trailing whitespace: send the bare number, e.g. 1234.50")]
    Whitespace {
        /// What was being parsed: `amount` or `rate`.
        what: &'static str,
        /// The input, cut to 48 characters.
        input: String,
    },

    /// A `,` in the number: grouping means different things in different locales.
    #[error("{what} {input:?} contains the grouping separator ',': send digits with an optional '.' decimal point and no grouping, e.g. 1234.50")]
    GroupingSeparator {
        /// What was being parsed: `amount` or `rate`.
        what: &'static str,
        /// The input, cut to 48 characters.
        input: String,
    },

    /// Exponent notation (`1.5e3`).
    #[error("{what} {input:?} uses exponent notation: write the digits out, e.g. 1500 instead of 1.5e3")]
    Exponent {
        /// What was being parsed: `amount` or `rate`.
        what: &'static str,
        /// The input, cut to 48 characters.
        input: String,
    },

    /// `NaN` or `Infinity`.
    #[error("{what} {input:?} is not a finite number")]
    NotFinite {
        /// What was being parsed: `amount` or `rate`.
        what: &'static str,
        /// The input, cut to 48 characters.
        input: String,
    },

    /// A character that is not a digit, a sign or the decimal point.
    #[error("{what} {input:?} has {ch:?} at position {position}: only digits, one leading '-' or '+' and one '.' are allowed")]
    InvalidCharacter {
        /// What was being parsed: `amount` or `rate`.
        what: &'static str,
        /// The input, cut to 48 characters.
        input: String,
        /// The offending character.
        ch: char,
        /// Its position in the input, counting characters from 1.
        position: usize,
    },

    /// A decimal point without digits on both sides (`.5`, `5.`).
    #[error("{what} {input:?} needs digits on both sides of the decimal point (write 0.5 rather than .5, and 5 or 5.0 rather than 5.)")]
    MissingDigits {
        /// What was being parsed: `amount` or `rate`.
        what: &'static str,
        /// The input, cut to 48 characters.
        input: String,
    },

    /// More decimal places than the currency has, and no rounding mode was given.
    #[error("amount {input:?} has {places} decimal places but {currency} allows {allowed}: pass a rounding mode or send minor units")]
    ExcessPrecision {
        /// The input, cut to 48 characters.
        input: String,
        /// The decimal places in the input.
        places: usize,
        /// The currency parsed into.
        currency: Currency,
        /// The currency's exponent (2 for USD, 0 for JPY).
        allowed: u8,
    },

    /// An amount beyond i64 minor units.
    #[error(
        "amount {input:?} is out of range for {currency}: at most 9223372036854775807 minor units either side of zero"
    )]
    OutOfRange {
        /// The input, cut to 48 characters.
        input: String,
        /// The currency parsed into.
        currency: Currency,
    },

    /// A rate whose exact fraction does not fit.
    #[error("rate {input:?} does not fit: at most 18 decimal places, and numerator and denominator within i64")]
    RateOutOfRange {
        /// The input, cut to 48 characters.
        input: String,
    },

    /// Two amounts of different currencies combined or compared.
    #[error(
        "cannot {op} {left} and {right}: amounts in different currencies are never combined; convert explicitly first"
    )]
    CurrencyMismatch {
        /// The operation (`add`, `compare`, …).
        op: &'static str,
        /// The first operand's currency.
        left: Currency,
        /// The second operand's currency.
        right: Currency,
    },

    /// A result beyond i64 minor units.
    #[error("{op} overflowed: the result does not fit in i64 minor units")]
    Overflow {
        /// The operation that overflowed.
        op: &'static str,
    },

    /// A ratio or rate with a zero denominator.
    #[error("{what} has a zero denominator")]
    ZeroDenominator {
        /// What had the zero denominator (`rate`; ratios are rates too).
        what: &'static str,
    },

    /// Allocation ratios or part counts that cannot be honoured.
    #[error("cannot allocate: {reason}")]
    InvalidAllocation {
        /// Why, and what to pass instead.
        reason: &'static str,
    },
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
