//! Row mapping: a stored value this build does not recognise is an error naming the table,
//! row and column, never a default (an unknown status used to read as `draft`, unparseable
//! line items as `null`, a bad SQLite timestamp as the year -262143).

use crate::support::{new_invoice, now, org, render, store};
use keel_billing::{BillingError, Created, Idempotency, ListFilter};
use keel_storage::{sqlx, Db};
use keel_testkit::{backend_tests, TestDb};

backend_tests!(
    an_unknown_status_is_an_error,
    unparseable_line_items_are_an_error,
    a_bad_timestamp_is_an_error,
    an_unknown_report_currency_is_an_error,
    a_bad_remembered_status_is_an_error,
);

/// Runs `sql` (no parameters) with CHECK constraints out of the way, as a value written by
/// another tool or an older build would be.
async fn force(db: &Db, sql: &str) {
    match db {
        Db::Postgres(p) => {
            for c in ["keel_invoices_status_check", "keel_invoices_currency_check"] {
                sqlx::query(&format!("ALTER TABLE keel_invoices DROP CONSTRAINT IF EXISTS {c}"))
                    .execute(p)
                    .await
                    .unwrap();
            }
            sqlx::query(sql).execute(p).await.unwrap();
        }
        Db::Sqlite(p) => {
            let mut conn = p.acquire().await.unwrap();
            sqlx::query("PRAGMA ignore_check_constraints = ON").execute(&mut *conn).await.unwrap();
            sqlx::query(sql).execute(&mut *conn).await.unwrap();
            sqlx::query("PRAGMA ignore_check_constraints = OFF").execute(&mut *conn).await.unwrap();
        }
    }
}

/// Creates one invoice, damages it with `sql`, and returns the error reading it (by id and
/// through the list), checking it names `column`.
async fn read_fails(t: TestDb, sql: &str, column: &str) {
    let a = org(&t, "A").await;
    let s = store(&t);
    let Created::New(v) = s.create(a, &[new_invoice("Damaged", 1)], None, now(), &render).await.unwrap() else {
        panic!("new")
    };
    force(&t.db, sql).await;
    for e in [
        s.get(a, v[0].id).await.unwrap_err(),
        s.list(a, &ListFilter { limit: 10, ..ListFilter::default() }).await.unwrap_err(),
    ] {
        match &e {
            BillingError::BadRow { table, id, column: c, .. } => {
                assert_eq!((*table, id.as_str(), *c), ("keel_invoices", v[0].id.to_string().as_str(), column), "{e}");
            }
            other => panic!("expected BadRow for {column}, got {other}"),
        }
    }
}

async fn an_unknown_status_is_an_error(t: TestDb) {
    read_fails(t, "UPDATE keel_invoices SET status = 'refunded'", "status").await;
}

async fn unparseable_line_items_are_an_error(t: TestDb) {
    let sql = match t.db {
        Db::Postgres(_) => "UPDATE keel_invoices SET line_items = '{\"not\": \"lines\"}'::jsonb",
        Db::Sqlite(_) => "UPDATE keel_invoices SET line_items = 'not json'",
    };
    read_fails(t, sql, "line_items").await;
}

async fn a_bad_timestamp_is_an_error(t: TestDb) {
    let sql = match t.db {
        // sqlx would panic decoding infinity; the store reads it as an error instead.
        Db::Postgres(_) => "UPDATE keel_invoices SET created_at = 'infinity'",
        Db::Sqlite(_) => "UPDATE keel_invoices SET created_at = 9223372036854775807",
    };
    read_fails(t, sql, "created_at").await;
}

async fn an_unknown_report_currency_is_an_error(t: TestDb) {
    use keel_billing::report::{Grouping, Kind, ReportQuery};
    let a = org(&t, "A").await;
    let s = store(&t);
    let at = now();
    s.create(a, &[new_invoice("Odd money", 1)], None, at, &render).await.unwrap();
    force(&t.db, "UPDATE keel_invoices SET currency = 'XXQ'").await;
    let q = ReportQuery {
        kind: Kind::Invoices,
        org: a,
        from: at - chrono::Duration::days(1),
        until: at + chrono::Duration::days(1),
        grouping: Grouping::Status,
    };
    let e = s.report_page(q, None, 100).await.unwrap_err();
    assert!(matches!(&e, BillingError::BadRow { column: "currency", .. }), "{e}");
}

async fn a_bad_remembered_status_is_an_error(t: TestDb) {
    let a = org(&t, "A").await;
    let s = store(&t);
    let idem = Idempotency { key: "k".into(), request_hash: "h".into() };
    s.create(a, &[new_invoice("Remembered", 1)], Some(&idem), now(), &render).await.unwrap();
    force(&t.db, "UPDATE keel_idempotency_keys SET status = 0").await;
    let e = s.find_idempotent(a, &idem, now()).await.unwrap_err();
    assert!(matches!(&e, BillingError::BadRow { table: "keel_idempotency_keys", column: "status", .. }), "{e}");
}
