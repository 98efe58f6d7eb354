//! Where report rows come from: keel-billing's store (keyset pages of invoices or payments,
//! one implementation per backend), behind a narrow trait so a test can wrap the real one to
//! fail a page mid-report.

use futures::future::BoxFuture;
use keel_billing::report::{Cursor, ReportQuery, Row};
use keel_billing::BillingError;
use keel_money::Page;
use keel_storage::Db;

/// One page of a report's rows after `cursor`.
pub trait ReportSource: Send + Sync + 'static {
    fn page(
        &self,
        query: ReportQuery,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page<Cursor, Row>, BillingError>>;
}

/// The real rows, from the database through [`keel_billing::BillingStore::report_page`].
pub struct DbReportSource(pub Db);

impl ReportSource for DbReportSource {
    fn page(
        &self,
        query: ReportQuery,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page<Cursor, Row>, BillingError>> {
        let store = keel_billing::open(self.0.clone());
        Box::pin(async move { store.report_page(query, cursor, limit).await })
    }
}
