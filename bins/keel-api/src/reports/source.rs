//! Where report rows come from: a keyset-paged source per table, behind a trait so a test can
//! wrap the real one to fail a page mid-report.

use chrono::{DateTime, Datelike, Utc};
use futures::future::BoxFuture;
use keel_ids::OrgId;
use keel_money::{Currency, Money, Page};
use keel_storage::{sqlx, Db};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Invoices,
    Payments,
}

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

#[derive(Debug, thiserror::Error)]
pub enum ReportSourceError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("row {id} has an unusable amount: {cause}")]
    BadRow { id: String, cause: String },
}

pub trait ReportSource: Send + Sync + 'static {
    #[allow(clippy::too_many_arguments)]
    fn page<'a>(
        &'a self,
        kind: Kind,
        org: OrgId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        grouping: Grouping,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Page<Cursor, Row>, ReportSourceError>>;
}

pub struct DbReportSource(pub Db);

type Raw = (String, String, i64, i64, String);

fn to_page(rows: Vec<Raw>, limit: usize) -> Result<Page<Cursor, Row>, ReportSourceError> {
    let page = Page::keyset_probed(rows, limit, |r: &Raw| (r.3, r.4.clone()));
    page.try_map(|(group, currency, amount, _, id)| {
        let c = Currency::from_code(&currency)
            .map_err(|e| ReportSourceError::BadRow { id: id.clone(), cause: e.to_string() })?;
        Ok((group, Money::from_minor(amount, c)))
    })
}

impl ReportSource for DbReportSource {
    fn page<'a>(
        &'a self,
        kind: Kind,
        org: OrgId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        grouping: Grouping,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Page<Cursor, Row>, ReportSourceError>> {
        Box::pin(async move {
            let (table, time, amount) = match kind {
                Kind::Invoices => ("keel_invoices", "created_at", "total_minor"),
                Kind::Payments => ("keel_payments", "paid_at", "amount_minor"),
            };
            let probe = (limit + 1) as i64;
            let rows: Vec<Raw> = match &self.0 {
                Db::Postgres(p) => {
                    // Only plain columns come back: the month key and the cursor are made
                    // here, because `to_char`, `extract` and `id::text` per row cost the
                    // database about three times the index scan itself.
                    let status = match kind {
                        Kind::Invoices => "status",
                        Kind::Payments => "'payment'",
                    };
                    // The keyset is the column pair itself, (time, id), so the
                    // (org_id, time, id) index starts each page where the last one ended.
                    // The cursor carries the time in microseconds, PostgreSQL's precision.
                    let after = match cursor {
                        None => None,
                        Some((us, id)) => Some((
                            DateTime::<Utc>::from_timestamp_micros(us).ok_or_else(|| ReportSourceError::BadRow {
                                id: id.clone(),
                                cause: format!("cursor time {us} is out of range"),
                            })?,
                            id,
                        )),
                    };
                    let keyset = if after.is_some() { "AND ({time}, id) > ($4, $5::uuid)" } else { "" };
                    let keyset = keyset.replace("{time}", time);
                    let q = format!(
                        "SELECT {status}, currency, {amount}, {time}, id FROM {table}
                         WHERE org_id = $1 AND {time} >= $2 AND {time} < $3 {keyset}
                         ORDER BY {time}, id LIMIT $6"
                    );
                    let (after_time, after_id) = after.unwrap_or((from, String::new()));
                    let rows: Vec<(String, String, i64, DateTime<Utc>, uuid::Uuid)> = sqlx::query_as(&q)
                        .bind(org.as_uuid())
                        .bind(from)
                        .bind(until)
                        .bind(after_time)
                        .bind(after_id)
                        .bind(probe)
                        .fetch_all(p)
                        .await?;
                    rows.into_iter()
                        .map(|(status, currency, amount, at, id)| {
                            let group = match grouping {
                                Grouping::Month => format!("{:04}-{:02}", at.year(), at.month()),
                                Grouping::Status => status,
                            };
                            (group, currency, amount, at.timestamp_micros(), id.to_string())
                        })
                        .collect()
                }
                Db::Sqlite(p) => {
                    let (c_ms, c_id) = cursor.unwrap_or((i64::MIN, String::new()));
                    let group = match (grouping, kind) {
                        (Grouping::Month, _) => format!("strftime('%Y-%m', {time} / 1000, 'unixepoch')"),
                        (Grouping::Status, Kind::Invoices) => "status".to_owned(),
                        (Grouping::Status, Kind::Payments) => "'payment'".to_owned(),
                    };
                    let q = format!(
                        "SELECT {group}, currency, {amount}, {time}, id FROM {table}
                         WHERE org_id = ?1 AND {time} >= ?2 AND {time} < ?3 AND ({time}, id) > (?4, ?5)
                         ORDER BY {time}, id LIMIT ?6"
                    );
                    sqlx::query_as(&q)
                        .bind(org.to_string())
                        .bind(from.timestamp_millis())
                        .bind(until.timestamp_millis())
                        .bind(c_ms)
                        .bind(&c_id)
                        .bind(probe)
                        .fetch_all(p)
                        .await?
                }
            };
            to_page(rows, limit)
        })
    }
}
