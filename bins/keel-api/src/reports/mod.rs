//! Exact reports: revenue by month or status, and the dashboard. Totals come from keel-money's
//! paged aggregation: every row is read (keyset pages, no row cap), money is summed in integer
//! minor units per currency, and a failing page fails the whole report — never a partial total.
//!
//! Sums are i128 ([`keel_money::WideTotals`]) and answered at that width, so no stored data can
//! overflow a report: each amount is at most `keel_billing::MAX_AMOUNT_MINOR` (< 2^50; rows
//! from before that bound are still i64, < 2^63) and a count is a u64 (< 2^64), so any sum
//! stays below 2^127. A total past i64 is still exact in the JSON (`minor` is an integer of
//! any size) and the CSV.

pub(crate) mod dashboard;
mod range;
pub(crate) mod revenue;
mod source;

pub(crate) use dashboard::{dashboard, DASHBOARD_TAG};
pub use keel_billing::report::{Cursor, Grouping, Kind, ReportQuery, Row};
pub(crate) use revenue::revenue;
pub use source::{DbReportSource, ReportSource};

/// Rows per page when draining a source. Bounded so one report never holds a huge result set.
pub const REPORT_PAGE_SIZE: usize = 1000;
