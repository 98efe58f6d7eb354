//! Shared helpers: a store and an org on a test database, invoices to create.

use chrono::{DateTime, TimeZone, Utc};
use keel_billing::{BillingStore, Invoice, InvoiceStatus, LineItem, NewInvoice, Rendered};
use keel_ids::OrgId;
use keel_testkit::TestDb;
use std::sync::Arc;

pub(crate) fn store(t: &TestDb) -> Arc<dyn BillingStore> {
    keel_billing::open(t.db.clone())
}

pub(crate) async fn org(t: &TestDb, name: &str) -> OrgId {
    keel_tenancy::Tenancy::new(t.db.clone()).create_org(name, None).await.unwrap().id
}

/// Now, at the millisecond: what both backends store exactly, so values round-trip equal.
pub(crate) fn now() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(Utc::now().timestamp_millis()).unwrap()
}

pub(crate) fn new_invoice(customer: &str, unit: i64) -> NewInvoice {
    NewInvoice {
        customer_name: customer.to_owned(),
        currency: "USD",
        status: InvoiceStatus::Draft,
        total_minor: 2 * unit,
        line_items: vec![LineItem { description: "Window cleaning".into(), quantity: 2, unit_amount_minor: unit }],
    }
}

/// The answer keel-api remembers: the ids, enough to tell creations apart.
pub(crate) fn render(inv: &[Invoice]) -> Rendered {
    let ids: Vec<String> = inv.iter().map(|i| i.id.to_string()).collect();
    Rendered { status: 201, body: ids.join(",") }
}
