//! The storage contract: [`BillingStore`], one implementation per backend ([`PgBillingStore`],
//! [`SqliteBillingStore`]), both held to the same conformance suite (`tests/it`).
//!
//! Methods return boxed futures so callers can hold an `Arc<dyn BillingStore>` and tests can
//! wrap one.

use crate::report::{Cursor, ReportQuery, Row};
use crate::{BillingError, Created, Idempotency, Invoice, InvoicePage, ListFilter, NewInvoice, Payment, Render};
use crate::{PgBillingStore, SqliteBillingStore};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use keel_ids::OrgId;
use keel_money::Page;
use keel_storage::{Backend, Db};
use std::sync::Arc;
use std::time::Duration;

/// A store call's future.
pub type BillingFuture<'a, T> = BoxFuture<'a, Result<T, BillingError>>;

/// How long a create waits for another request holding the same Idempotency-Key before it
/// answers [`Created::InProgress`]. A create commits in milliseconds (a 1,000-invoice bulk in
/// well under a second), so a wait this long means the first is stuck or very slow; the
/// waiter then gives its pooled connection back and the client retries, instead of several
/// retries each holding a connection for as long as the first one runs.
pub const IDEMPOTENCY_WAIT: Duration = Duration::from_secs(5);

/// Invoices, payments and the reports' rows, per org.
pub trait BillingStore: Send + Sync {
    /// The backend behind this store.
    fn backend(&self) -> Backend;

    /// The answer remembered for `idem` within [`crate::IDEMPOTENCY_WINDOW`] before `now`:
    /// [`Created::Replay`] for the same request, [`Created::KeyReused`] for another, `None` if
    /// the key is unused (or forgotten).
    fn find_idempotent<'a>(
        &'a self,
        org: OrgId,
        idem: &'a Idempotency,
        now: DateTime<Utc>,
    ) -> BillingFuture<'a, Option<Created>>;

    /// Creates invoices atomically: numbers from the per-org, per-day counter (seeded from
    /// numbers that already exist), the rows, and, with `idem`, the remembered answer
    /// (`render`ed from the new invoices). With `idem`, the key is claimed first in the same
    /// transaction, so of any number of concurrent creates with one key exactly one creates;
    /// the others answer [`Created::Replay`] (or [`Created::KeyReused`]) once it commits, or
    /// [`Created::InProgress`] if it holds the key longer than [`IDEMPOTENCY_WAIT`]. Nothing is
    /// stored by a create that fails.
    fn create<'a>(
        &'a self,
        org: OrgId,
        items: &'a [NewInvoice],
        idem: Option<&'a Idempotency>,
        now: DateTime<Utc>,
        render: &'a Render,
    ) -> BillingFuture<'a, Created>;

    /// One page, newest first, and the total matching count.
    fn list<'a>(&'a self, org: OrgId, filter: &'a ListFilter<'a>) -> BillingFuture<'a, InvoicePage>;

    /// One invoice of `org`.
    fn get(&self, org: OrgId, id: uuid::Uuid) -> BillingFuture<'_, Option<Invoice>>;

    /// Records a payment and marks the invoice paid once payments cover its total, atomically.
    fn add_payment<'a>(
        &'a self,
        org: OrgId,
        invoice: &'a Invoice,
        amount_minor: i64,
        now: DateTime<Utc>,
    ) -> BillingFuture<'a, Payment>;

    /// One keyset page of a report's rows after `cursor`, in (time, id) order: at most `limit`
    /// rows, and the cursor of the next page if there may be one.
    fn report_page(
        &self,
        query: ReportQuery,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> BillingFuture<'_, Page<Cursor, Row>>;
}

/// The store for a database.
pub fn open(db: Db) -> Arc<dyn BillingStore> {
    match db {
        Db::Postgres(p) => Arc::new(PgBillingStore::new(p)),
        Db::Sqlite(p) => Arc::new(SqliteBillingStore::new(p)),
    }
}
