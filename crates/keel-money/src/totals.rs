//! `Totals`: exact per-currency sums and counts; currencies are kept apart, never mixed.

use crate::{Currency, Money, MoneyError};

/// A running exact tally per currency. Sums are i128, so no realistic row count overflows them
/// and the result does not depend on row order; only a final total beyond i64 minor units fails,
/// in [`Totals::finish`].
#[derive(Debug, Clone, Default)]
pub struct Totals {
    // A handful of currencies per org at most: a linear scan beats hashing.
    entries: Vec<Running>,
}

#[derive(Debug, Clone, Copy)]
struct Running {
    currency: Currency,
    sum: i128,
    count: u64,
}

impl Totals {
    /// An empty tally.
    pub fn new() -> Totals {
        Totals::default()
    }

    /// Counts `amount` into its currency's total.
    #[inline]
    pub fn add(&mut self, amount: Money) -> Result<(), MoneyError> {
        let currency = amount.currency();
        let i = match self.entries.iter().position(|e| e.currency == currency) {
            Some(i) => i,
            None => {
                self.entries.push(Running { currency, sum: 0, count: 0 });
                self.entries.len() - 1
            }
        };
        let entry = &mut self.entries[i];
        match (entry.sum.checked_add(i128::from(amount.minor())), entry.count.checked_add(1)) {
            (Some(sum), Some(count)) => {
                entry.sum = sum;
                entry.count = count;
                Ok(())
            }
            _ => Err(MoneyError::Overflow { op: "total" }),
        }
    }

    /// Adds another tally into this one (e.g. per-shard partial tallies of one complete scan).
    pub fn merge(&mut self, other: &Totals) -> Result<(), MoneyError> {
        for theirs in &other.entries {
            match self.entries.iter_mut().find(|e| e.currency == theirs.currency) {
                Some(mine) => {
                    let overflow = MoneyError::Overflow { op: "total" };
                    mine.sum = mine.sum.checked_add(theirs.sum).ok_or(overflow.clone())?;
                    mine.count = mine.count.checked_add(theirs.count).ok_or(overflow)?;
                }
                None => self.entries.push(*theirs),
            }
        }
        Ok(())
    }

    /// Amounts counted so far, all currencies together.
    pub fn rows(&self) -> u64 {
        self.entries.iter().map(|e| e.count).sum()
    }

    /// The exact totals, one per currency seen, ordered by currency code.
    pub fn finish(&self) -> Result<ExactTotals, MoneyError> {
        let mut per_currency = self
            .entries
            .iter()
            .map(|e| {
                let total =
                    Money::from_minor_i128(e.sum, e.currency).map_err(|_| MoneyError::Overflow { op: "total" })?;
                Ok(CurrencyTotal { total, count: e.count })
            })
            .collect::<Result<Vec<_>, MoneyError>>()?;
        per_currency.sort_by_key(|t| t.total.currency());
        Ok(ExactTotals { rows: per_currency.iter().map(|t| t.count).sum(), per_currency })
    }
}

/// The exact total and row count of one currency.
///
/// Serde form: `{"currency":"USD","minor":123450,"formatted":"$1,234.50","plain":"1234.50","count":3}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrencyTotal {
    /// The sum of the currency's rows.
    pub total: Money,
    /// How many rows were in this currency.
    pub count: u64,
}

impl serde::Serialize for CurrencyTotal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("CurrencyTotal", 5)?;
        st.serialize_field("currency", &self.total.currency())?;
        st.serialize_field("minor", &self.total.minor())?;
        st.serialize_field("formatted", &self.total.to_string())?;
        st.serialize_field("plain", &self.total.plain().to_string())?;
        st.serialize_field("count", &self.count)?;
        st.end()
    }
}

/// Finished exact totals: one entry per currency present (ordered by code) and the row count.
/// An empty `per_currency` with `rows == 0` means the source held no rows, not that it was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ExactTotals {
    /// One total per currency present, ordered by currency code.
    pub per_currency: Vec<CurrencyTotal>,
    /// Rows summed, over every currency.
    pub rows: u64,
}

impl ExactTotals {
    /// The total and count of `currency`, if any row was in it.
    pub fn get(&self, currency: Currency) -> Option<&CurrencyTotal> {
        self.per_currency.iter().find(|t| t.total.currency() == currency)
    }

    /// The total in `currency`: exactly zero when no row was in that currency.
    pub fn total_in(&self, currency: Currency) -> Money {
        self.get(currency).map_or(Money::zero(currency), |t| t.total)
    }
}

/// An exact total of one currency that never overflows: i128 minor units. A [`Totals`] sums
/// i64 amounts counted in a u64, so its magnitude stays below 2^63 × 2^64 = 2^127 and always
/// fits; [`Totals::finish_wide`] therefore cannot fail, where [`Totals::finish`] fails once a
/// total passes i64. What a report should answer with when any stored data may be summed.
///
/// Serde form: the same as [`CurrencyTotal`]'s, `minor` a JSON integer of any size:
/// `{"currency":"USD","minor":123450,"formatted":"$1,234.50","plain":"1234.50","count":3}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WideTotal {
    /// The currency summed.
    pub currency: Currency,
    /// The sum in minor units.
    pub minor: i128,
    /// How many amounts were summed.
    pub count: u64,
}

impl WideTotal {
    /// The total as [`Money`], if it fits i64 minor units.
    pub fn to_money(&self) -> Result<Money, MoneyError> {
        Money::from_minor_i128(self.minor, self.currency)
    }

    /// `self × numer / denom`, rounded once under `rounding` (a projection of a total, say).
    pub fn mul_ratio(&self, numer: i64, denom: i64, rounding: crate::Rounding) -> Result<WideTotal, MoneyError> {
        let rate = crate::Rate::new(numer, denom)?;
        let product =
            self.minor.checked_mul(i128::from(rate.numer())).ok_or(MoneyError::Overflow { op: "multiply total" })?;
        let minor = crate::rounding::div_round(product, i128::from(rate.denom()), rounding);
        Ok(WideTotal { minor, ..*self })
    }

    /// The display form, as [`Money`]'s `Display` (`$1,234.50`).
    pub fn formatted(&self) -> String {
        crate::format::display(self.minor, self.currency)
    }

    /// The plain export form, as [`Money::plain`] (`1234.50`).
    pub fn plain(&self) -> String {
        crate::format::plain(self.minor, self.currency)
    }
}

impl serde::Serialize for WideTotal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("WideTotal", 5)?;
        st.serialize_field("currency", &self.currency)?;
        st.serialize_field("minor", &self.minor)?;
        st.serialize_field("formatted", &self.formatted())?;
        st.serialize_field("plain", &self.plain())?;
        st.serialize_field("count", &self.count)?;
        st.end()
    }
}

/// Finished wide totals: one entry per currency present (ordered by code) and the row count.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct WideTotals {
    /// One total per currency present, ordered by code.
    pub per_currency: Vec<WideTotal>,
    /// How many rows were summed, all currencies together.
    pub rows: u64,
}

impl WideTotals {
    /// The total in `currency`, if any row had it.
    pub fn get(&self, currency: Currency) -> Option<&WideTotal> {
        self.per_currency.iter().find(|t| t.currency == currency)
    }
}

impl Totals {
    /// The exact totals, one per currency seen, ordered by code, at whatever width they need.
    pub fn finish_wide(&self) -> WideTotals {
        let mut per_currency: Vec<WideTotal> =
            self.entries.iter().map(|e| WideTotal { currency: e.currency, minor: e.sum, count: e.count }).collect();
        per_currency.sort_by_key(|t| t.currency);
        WideTotals { rows: per_currency.iter().map(|t| t.count).sum(), per_currency }
    }
}
