//! Exact money in integer minor units, explicit rounding, allocation and exact paged aggregation.
#![doc = include_str!("../README.md")]
//!
//! ## Model
//! - [`Currency`]: an ISO 4217 code from a fixed table (USD 2, EUR 2, GBP 2, JPY 0, KWD 3, BHD 3,
//!   CHF 2, ...) with its minor-unit exponent. Unknown codes are an error naming the code.
//! - [`Money`]: `i64` minor units plus a `Currency` (Stripe-style). Arithmetic is `checked_*`
//!   returning `Result` on overflow or currency mismatch; rates and ratios use i128 intermediates
//!   and round once, under an explicit [`Rounding`].
//! - [`Money::allocate`] (by ratios) and [`Money::split`] (into N): largest remainder, the parts
//!   always sum to the original, negatives mirror positives.
//! - [`Forecast`] / [`Estimated`]: labelled figures that do not mix with actuals by type.
//! - [`Totals`], [`sum_pages`], [`sum_pages_by`], [`fold_pages`]: exact per-currency totals and
//!   counts over keyset-paginated sources, all pages or an error. [`sum_pages_by_wide`] answers
//!   in [`WideTotals`] (i128), which no sum of stored amounts can overflow.
//!
//! ## Text forms (decided here, relied on by the API)
//! - Input: [`Money::parse`] takes `-?digits(.digits)?` (a leading `+` is allowed), which is also
//!   PostgreSQL NUMERIC text. No grouping commas (ambiguous across locales: "1,234" is 1.234 in
//!   German), no symbols, no exponents, no whitespace. Non-zero digits beyond the currency's
//!   exponent are refused unless a [`Rounding`] is passed ([`Money::parse_rounded`]); trailing
//!   zeros beyond it are exact and accepted ("1.500" USD). BIGINT minor units go through
//!   [`Money::from_minor`]; a wide `SUM` through [`Money::from_minor_i128`] or its NUMERIC text.
//! - Display (`{}`): `$1,234.50`, `-$0.01` (leading minus, no accounting parentheses), `¥1,235`,
//!   `CHF 1,234.50` (code when no unambiguous symbol), `KWD 1.500`.
//! - Export ([`Money::plain`]): `1234.50`, `-0.01`, `1235`, `1.500`; what CSV carries next to a
//!   currency column, and exactly what `Money::parse` reads back.
//!
//! ## Serde forms
//! - `Money`: `{"minor":123450,"currency":"USD"}` (unknown fields refused; `minor` is a JSON number,
//!   exact in JavaScript only up to 2^53 minor units).
//! - `Currency`: `"USD"` (reading is ASCII case-insensitive).
//! - `Forecast<Money>` / `Estimated<Money>`: `{"basis":"forecast","minor":...,"currency":"USD"}`.
//! - `CurrencyTotal`: `{"currency":"USD","minor":123450,"formatted":"$1,234.50","plain":"1234.50","count":3}`.
//! - `Rounding`: snake_case, e.g. `"half_even"`, `"half_away_from_zero"`.
//!
//! ## Plugging SQL into the paged sum (the report endpoints)
//! ```
//! use keel_money::{sum_pages_by, Currency, Money, MoneyError, Page};
//! # #[derive(Clone)]
//! # struct Row { id: u32, status: &'static str, amount_minor: i64, currency: &'static str }
//! # let table: Vec<Row> = (1..=2_500)
//! #     .map(|id| Row { id, status: if id % 4 == 0 { "paid" } else { "open" }, amount_minor: 1_999, currency: "USD" })
//! #     .collect();
//! const PAGE: usize = 1_000;
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let report = sum_pages_by(|after: Option<u32>| {
//!     // In a report this is `SELECT id, status, amount_minor, currency FROM keel_invoices
//!     //   WHERE org_id = $1 AND ($2::int IS NULL OR id > $2) ORDER BY id LIMIT $3`;
//!     // an Err (a failed query) ends the scan and no total is returned.
//!     let rows: Vec<Row> = table.iter().filter(|r| after.map_or(true, |a| r.id > a)).take(PAGE).cloned().collect();
//!     async move {
//!         Page::keyset(rows, PAGE, |r: &Row| r.id).try_map(|r| {
//!             let currency = Currency::from_code(r.currency)?; // a bad row fails the report too
//!             Ok::<_, MoneyError>((r.status, Money::from_minor(r.amount_minor, currency)))
//!         })
//!     }
//! })
//! .await
//! .unwrap();
//! assert_eq!(report.overall.rows, 2_500);
//! assert_eq!(report.overall.total_in(Currency::USD).minor(), 2_500 * 1_999);
//! assert_eq!(report.groups["paid"].rows, 625);
//! # });
//! ```
//! The closure's error type is the caller's; any `Err` ends the scan and no total is returned.
//!
//! ## Rounding at boundaries
//! There is no default mode. `Rounding::HalfAwayFromZero` matches PostgreSQL `round(numeric)`;
//! `Rounding::HalfEven` matches rust_decimal's `round_dp`. Mixing them is how one-cent export
//! differences appear, so each boundary names its mode.
#![deny(missing_docs)]

mod allocate;
mod currency;
mod currency_table;
mod decimal;
mod error;
mod format;
mod labelled;
mod money;
#[cfg(feature = "openapi")]
mod openapi;
mod paged;
mod parse;
mod rate;
mod rounding;
mod totals;

pub use currency::Currency;
pub use error::MoneyError;
pub use format::PlainAmount;
pub use labelled::{Estimated, Forecast};
pub use money::Money;
pub use paged::{
    fold_pages, sum_pages, sum_pages_by, sum_pages_by_wide, Drained, GroupedTotals, GroupedWideTotals, Page, PagedError,
};
pub use rate::Rate;
pub use rounding::{Rounding, UnknownRounding};
pub use totals::{CurrencyTotal, ExactTotals, Totals, WideTotal, WideTotals};

#[cfg(test)]
mod tests;
