//! Shared helpers: a store and an org on a test database, invoices to create, raw SQL.

use chrono::{DateTime, TimeZone, Utc};
use keel_billing::{BillingStore, Invoice, InvoiceStatus, LineItem, NewInvoice, Rendered};
use keel_ids::OrgId;
use keel_storage::Db;
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

/// Runs one statement with `?` placeholders (rewritten to `$n` on PostgreSQL), binding text.
pub(crate) async fn exec(db: &Db, sql: &str, args: &[&str]) -> Result<u64, keel_storage::sqlx::Error> {
    use keel_storage::sqlx;
    match db {
        Db::Postgres(p) => {
            let mut n = 0;
            let sql: String = sql
                .chars()
                .map(|c| {
                    if c == '?' {
                        n += 1;
                        format!("${n}")
                    } else {
                        c.to_string()
                    }
                })
                .collect();
            let mut q = sqlx::query(&sql);
            for a in args {
                q = q.bind(*a);
            }
            Ok(q.execute(p).await?.rows_affected())
        }
        Db::Sqlite(p) => {
            let mut q = sqlx::query(sql);
            for a in args {
                q = q.bind(*a);
            }
            Ok(q.execute(p).await?.rows_affected())
        }
    }
}
