//! The amount bound as a database backstop (migration 0002), identical on both backends.

use crate::support::{new_invoice, now, org, render, store};
use keel_billing::{Created, MAX_AMOUNT_MINOR};
use keel_storage::{sqlx, Db};
use keel_testkit::{backend_tests, TestDb};

backend_tests!(amounts_past_the_maximum_are_refused_by_the_database);

async fn insert_invoice(db: &Db, org: keel_ids::OrgId, number: &str, total: i64) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO keel_invoices (id, org_id, number, status, customer_name, currency, total_minor, line_items) VALUES";
    match db {
        Db::Postgres(p) => sqlx::query(&format!("{sql} ($1, $2, $3, 'open', 'Raw', 'USD', $4, '[]')"))
            .bind(uuid::Uuid::now_v7())
            .bind(org.as_uuid())
            .bind(number)
            .bind(total)
            .execute(p)
            .await
            .map(drop),
        Db::Sqlite(p) => sqlx::query(&format!("{sql} (?, ?, ?, 'open', 'Raw', 'USD', ?, '[]')"))
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(org.to_string())
            .bind(number)
            .bind(total)
            .execute(p)
            .await
            .map(drop),
    }
}

async fn insert_payment(db: &Db, org: keel_ids::OrgId, invoice: uuid::Uuid, amount: i64) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO keel_payments (id, org_id, invoice_id, amount_minor, currency) VALUES";
    match db {
        Db::Postgres(p) => sqlx::query(&format!("{sql} ($1, $2, $3, $4, 'USD')"))
            .bind(uuid::Uuid::now_v7())
            .bind(org.as_uuid())
            .bind(invoice)
            .bind(amount)
            .execute(p)
            .await
            .map(drop),
        Db::Sqlite(p) => sqlx::query(&format!("{sql} (?, ?, ?, ?, 'USD')"))
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(org.to_string())
            .bind(invoice.to_string())
            .bind(amount)
            .execute(p)
            .await
            .map(drop),
    }
}

fn is_bound_violation(e: &sqlx::Error, name: &str) -> bool {
    e.to_string().contains(name)
}

async fn amounts_past_the_maximum_are_refused_by_the_database(t: TestDb) {
    let a = org(&t, "A").await;
    for (i, bad) in [MAX_AMOUNT_MINOR + 1, i64::MAX, -1].into_iter().enumerate() {
        let e = insert_invoice(&t.db, a, &format!("RAW-{i}"), bad).await.unwrap_err();
        assert!(is_bound_violation(&e, "keel_invoices_total_minor_range"), "{bad}: {e}");
    }
    insert_invoice(&t.db, a, "RAW-MAX", MAX_AMOUNT_MINOR).await.unwrap();
    let Created::New(v) = store(&t).create(a, &[new_invoice("Payable", 1)], None, now(), &render).await.unwrap() else {
        panic!("new")
    };
    for bad in [MAX_AMOUNT_MINOR + 1, i64::MAX] {
        let e = insert_payment(&t.db, a, v[0].id, bad).await.unwrap_err();
        assert!(is_bound_violation(&e, "keel_payments_amount_minor_range"), "{bad}: {e}");
    }
    insert_payment(&t.db, a, v[0].id, MAX_AMOUNT_MINOR).await.unwrap();
    // Updates are held to it too.
    let e = match &t.db {
        Db::Postgres(p) => {
            sqlx::query("UPDATE keel_invoices SET total_minor = $1").bind(i64::MAX).execute(p).await.map(drop)
        }
        Db::Sqlite(p) => {
            sqlx::query("UPDATE keel_invoices SET total_minor = ?").bind(i64::MAX).execute(p).await.map(drop)
        }
    }
    .unwrap_err();
    assert!(is_bound_violation(&e, "keel_invoices_total_minor_range"), "{e}");
}
