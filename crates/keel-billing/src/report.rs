//! What the exact reports read: invoices or payments of one org in a time range, in keyset
//! pages of `(group, amount)` rows, so a report can drain them all (keel-money's paged sums).

use chrono::{DateTime, Utc};
use keel_ids::OrgId;
use keel_money::Money;

/// Which table a report reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Invoices by `created_at`, amount `total_minor`.
    Invoices,
    /// Payments by `paid_at`, amount `amount_minor`.
    Payments,
}

/// What each row is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// `YYYY-MM` of the row's time (UTC).
    Month,
    /// The invoice status (payments have none: they group as `payment`).
    Status,
}

/// The keyset position: (time, id), the time in unix microseconds on Postgres and unix
/// milliseconds on SQLite (each backend's own precision). Rows come in that order.
pub type Cursor = (i64, String);

/// One report row: its group key and amount.
pub type Row = (String, Money);

/// One report's rows: an org's invoices or payments with time in `[from, until)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportQuery {
    /// The table.
    pub kind: Kind,
    /// The org; never across orgs.
    pub org: OrgId,
    /// Inclusive start.
    pub from: DateTime<Utc>,
    /// Exclusive end.
    pub until: DateTime<Utc>,
    /// The group key of each row.
    pub grouping: Grouping,
}

impl Kind {
    /// (table, time column, amount column).
    pub(crate) fn columns(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Kind::Invoices => ("keel_invoices", "created_at", "total_minor"),
            Kind::Payments => ("keel_payments", "paid_at", "amount_minor"),
        }
    }
}
