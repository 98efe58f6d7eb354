//! Exact reports: revenue by month or status, and the dashboard. Totals come from keel-money's
//! paged aggregation: every row is read (keyset pages, no row cap), money is summed in integer
//! minor units per currency, and a failing page fails the whole report — never a partial total.

mod dashboard;
mod range;
mod revenue;
mod source;

pub(crate) use dashboard::{dashboard, DASHBOARD_TAG};
pub(crate) use revenue::revenue;
pub use source::{Cursor, DbReportSource, Grouping, Kind, ReportSource, ReportSourceError, Row};

/// Rows per page when draining a source. Bounded so one report never holds a huge result set.
pub const REPORT_PAGE_SIZE: usize = 1000;
