//! `Money`: integer minor units plus a currency, with arithmetic that returns `Result` instead of
//! panicking or wrapping.

use crate::parse::parse_minor;
use crate::rounding::{div_round, Rounding};
use crate::{Currency, MoneyError, Rate};
use std::cmp::Ordering;

/// An exact amount: `minor` units (cents for USD, yen for JPY, fils for KWD) of `currency`.
///
/// Built by [`Money::from_minor`] (database BIGINT, Stripe amounts) or by parsing decimal text
/// ([`Money::parse`], [`Money::parse_rounded`]). There are no arithmetic operators on purpose:
/// every operation is a `checked_*`/named method returning `Result`, so an overflow or a currency
/// mismatch is a value the caller must handle. Amounts of different currencies are never ordered
/// or combined; `Eq` compares currency and amount.
///
/// Serde form: `{"minor":123450,"currency":"USD"}` (unknown fields are refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// An amount in minor units, e.g. `from_minor(123450, Currency::USD)` is $1,234.50.
    /// Every i64 is a valid amount, so this cannot fail.
    pub const fn from_minor(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    /// Nothing, in `currency`: the start of a sum.
    pub const fn zero(currency: Currency) -> Money {
        Money { minor: 0, currency }
    }

    /// Whole major units: `from_major(12, USD)` is $12.00.
    pub fn from_major(major: i64, currency: Currency) -> Result<Money, MoneyError> {
        major
            .checked_mul(currency.minor_per_major())
            .map(|minor| Money { minor, currency })
            .ok_or(MoneyError::Overflow { op: "from_major" })
    }

    /// Parses decimal text exactly: "1234.5", "-0.01", "+3", and PostgreSQL NUMERIC text such as
    /// "1234.5000" (trailing zeros past the exponent are exact, so accepted).
    ///
    /// Refused with a specific error: more non-zero decimals than the currency allows
    /// ([`MoneyError::ExcessPrecision`]; use [`Money::parse_rounded`] or send minor units), grouping
    /// commas, exponents, NaN/Infinity, whitespace, symbols, and values beyond i64 minor units.
    pub fn parse(input: &str, currency: Currency) -> Result<Money, MoneyError> {
        parse_minor(input, currency, None).map(|minor| Money { minor, currency })
    }

    /// Like [`Money::parse`], but extra decimals are rounded under `rounding` instead of refused.
    /// `Rounding::HalfAwayFromZero` matches PostgreSQL `round(numeric, exponent)`.
    pub fn parse_rounded(input: &str, currency: Currency, rounding: Rounding) -> Result<Money, MoneyError> {
        parse_minor(input, currency, Some(rounding)).map(|minor| Money { minor, currency })
    }

    /// Minor units from an exact wide integer, e.g. a `SUM(bigint)` decoded as i128.
    pub fn from_minor_i128(minor: i128, currency: Currency) -> Result<Money, MoneyError> {
        i64::try_from(minor)
            .map(|minor| Money { minor, currency })
            .map_err(|_| MoneyError::Overflow { op: "from_minor_i128" })
    }

    /// The amount in minor units (cents for USD, yen for JPY): what to store in a BIGINT column.
    pub const fn minor(self) -> i64 {
        self.minor
    }

    /// The amount's currency.
    pub const fn currency(self) -> Currency {
        self.currency
    }

    /// True for exactly zero.
    pub const fn is_zero(self) -> bool {
        self.minor == 0
    }

    /// True below zero (a refund, a credit).
    pub const fn is_negative(self) -> bool {
        self.minor < 0
    }

    /// True above zero.
    pub const fn is_positive(self) -> bool {
        self.minor > 0
    }

    fn same_currency(self, other: Money, op: &'static str) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch { op, left: self.currency, right: other.currency })
        }
    }

    /// `self + other`; the currencies must match.
    #[inline]
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other, "add")?;
        match self.minor.checked_add(other.minor) {
            Some(minor) => Ok(Money { minor, currency: self.currency }),
            None => Err(MoneyError::Overflow { op: "add" }),
        }
    }

    /// `self - other`; the currencies must match.
    #[inline]
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other, "subtract")?;
        match self.minor.checked_sub(other.minor) {
            Some(minor) => Ok(Money { minor, currency: self.currency }),
            None => Err(MoneyError::Overflow { op: "subtract" }),
        }
    }

    /// `-self`; fails only for i64::MIN minor units.
    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        self.minor.checked_neg().map(|minor| Money { minor, ..self }).ok_or(MoneyError::Overflow { op: "negate" })
    }

    /// `|self|`; fails only for i64::MIN minor units.
    pub fn checked_abs(self) -> Result<Money, MoneyError> {
        self.minor.checked_abs().map(|minor| Money { minor, ..self }).ok_or(MoneyError::Overflow { op: "abs" })
    }

    /// `self × quantity` (a unit price times a line quantity).
    pub fn checked_mul(self, quantity: i64) -> Result<Money, MoneyError> {
        self.minor
            .checked_mul(quantity)
            .map(|minor| Money { minor, ..self })
            .ok_or(MoneyError::Overflow { op: "multiply" })
    }

    /// `self × rate`, rounded to the minor unit under `rounding`. The product is exact in i128
    /// before the one rounding step, so `qty × price × 8.875%` loses nothing until the end.
    pub fn mul_rate(self, rate: Rate, rounding: Rounding) -> Result<Money, MoneyError> {
        let product = i128::from(self.minor) * i128::from(rate.numer());
        let minor = div_round(product, i128::from(rate.denom()), rounding);
        Money::from_minor_i128(minor, self.currency).map_err(|_| MoneyError::Overflow { op: "multiply by rate" })
    }

    /// `self × numer / denom`, rounded under `rounding`; e.g. a pro-rata share of 12 of 31 days.
    pub fn mul_ratio(self, numer: i64, denom: i64, rounding: Rounding) -> Result<Money, MoneyError> {
        self.mul_rate(Rate::new(numer, denom)?, rounding)
    }

    /// Orders two amounts of the same currency; different currencies have no order.
    pub fn checked_cmp(self, other: Money) -> Result<Ordering, MoneyError> {
        self.same_currency(other, "compare")?;
        Ok(self.minor.cmp(&other.minor))
    }

    /// Sums `amounts`, all of which must be in `currency`; the empty sum is zero. Intermediate
    /// totals are i128, so only a final total beyond i64 fails, whatever the order.
    pub fn sum<I: IntoIterator<Item = Money>>(currency: Currency, amounts: I) -> Result<Money, MoneyError> {
        let mut total: i128 = 0;
        for m in amounts {
            if m.currency != currency {
                return Err(MoneyError::CurrencyMismatch { op: "sum", left: currency, right: m.currency });
            }
            total = total.checked_add(i128::from(m.minor)).ok_or(MoneyError::Overflow { op: "sum" })?;
        }
        Money::from_minor_i128(total, currency).map_err(|_| MoneyError::Overflow { op: "sum" })
    }
}
