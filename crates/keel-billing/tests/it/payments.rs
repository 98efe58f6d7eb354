//! Payments: the invoice is marked paid once they cover its total, atomically, and however
//! large their sum (SQLite's integer sum() used to overflow past i64).

use crate::support::{new_invoice, now, org, render, store};
use keel_billing::{Created, Invoice, InvoiceStatus, MAX_AMOUNT_MINOR};
use keel_storage::{sqlx, Db};
use keel_testkit::{backend_tests, TestDb};

backend_tests!(payments_mark_the_invoice_paid_once_covered, payments_summing_past_i64_still_mark_paid);

async fn invoice(t: &TestDb, org: keel_ids::OrgId, total: i64) -> Invoice {
    let mut new = new_invoice("Payable", 1);
    new.total_minor = total;
    let Created::New(mut v) = store(t).create(org, &[new], None, now(), &render).await.unwrap() else { panic!("new") };
    v.remove(0)
}

async fn payments_mark_the_invoice_paid_once_covered(t: TestDb) {
    let a = org(&t, "A").await;
    let s = store(&t);
    let inv = invoice(&t, a, 200).await;
    let p = s.add_payment(a, &inv, 150, now()).await.unwrap();
    assert_eq!((p.invoice_status, p.amount_minor, p.currency.as_str()), (InvoiceStatus::Draft, 150, "USD"));
    let p = s.add_payment(a, &inv, 50, now()).await.unwrap();
    assert_eq!(p.invoice_status, InvoiceStatus::Paid);
    assert_eq!(s.get(a, inv.id).await.unwrap().unwrap().status, InvoiceStatus::Paid);
}

/// 10,000 payments of the largest amount on one invoice sum past i64 (about 10^19 minor
/// units); one more payment still answers, and marks the invoice paid.
async fn payments_summing_past_i64_still_mark_paid(t: TestDb) {
    let a = org(&t, "A").await;
    let s = store(&t);
    let inv = invoice(&t, a, MAX_AMOUNT_MINOR).await;
    match &t.db {
        Db::Postgres(p) => {
            sqlx::query(
                "INSERT INTO keel_payments (id, org_id, invoice_id, amount_minor, currency)
                 SELECT gen_random_uuid(), $1, $2, $3, 'USD' FROM generate_series(1, 10000)",
            )
            .bind(a.as_uuid())
            .bind(inv.id)
            .bind(MAX_AMOUNT_MINOR)
            .execute(p)
            .await
            .unwrap();
        }
        Db::Sqlite(p) => {
            sqlx::query(
                "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 10000)
                 INSERT INTO keel_payments (id, org_id, invoice_id, amount_minor, currency)
                 SELECT printf('00000000-0000-4000-9000-%012d', n), ?1, ?2, ?3, 'USD' FROM g",
            )
            .bind(a.to_string())
            .bind(inv.id.to_string())
            .bind(MAX_AMOUNT_MINOR)
            .execute(p)
            .await
            .unwrap();
        }
    }
    let p = s.add_payment(a, &inv, 1, now()).await.unwrap();
    assert_eq!(p.invoice_status, InvoiceStatus::Paid);
}
