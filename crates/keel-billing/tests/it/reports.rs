//! Report pages: every row of one org and range exactly once, in keyset order, grouped.

use crate::support::{new_invoice, now, org, render, store};
use keel_billing::report::{Cursor, Grouping, Kind, ReportQuery};
use keel_billing::{BillingStore, Created};
use keel_money::{Currency, Money};
use keel_testkit::{backend_tests, TestDb};

backend_tests!(pages_cover_every_row_once_per_org_and_range);

/// Drains the query `limit` rows at a time.
async fn drain(s: &dyn BillingStore, q: ReportQuery, limit: usize) -> (Vec<(String, Money)>, usize) {
    let (mut rows, mut pages, mut cursor): (Vec<_>, usize, Option<Cursor>) = (Vec::new(), 0, None);
    loop {
        let page = s.report_page(q, cursor.clone(), limit).await.unwrap();
        assert!(page.items.len() <= limit);
        pages += 1;
        rows.extend(page.items);
        match page.next {
            None => return (rows, pages),
            Some(next) => cursor = Some(next),
        }
    }
}

async fn pages_cover_every_row_once_per_org_and_range(t: TestDb) {
    let (a, b) = (org(&t, "A").await, org(&t, "B").await);
    let s = store(&t);
    let at = now();
    // 23 invoices in one instant (the keyset must break ties by id), some paid.
    let batch: Vec<_> = (0..23).map(|i| new_invoice(&format!("C{i}"), 10 + i)).collect();
    let Created::New(v) = s.create(a, &batch, None, at, &render).await.unwrap() else { panic!("new") };
    for inv in v.iter().take(5) {
        s.add_payment(a, inv, inv.total_minor, at).await.unwrap();
    }
    s.create(b, &[new_invoice("Not A's", 1_000_000)], None, at, &render).await.unwrap();
    let day = chrono::Duration::days(1);
    let q = |kind, grouping| ReportQuery { kind, org: a, from: at - day, until: at + day, grouping };
    let (rows, pages) = drain(s.as_ref(), q(Kind::Invoices, Grouping::Status), 4).await;
    assert_eq!(rows.len(), 23);
    assert_eq!(pages, 6);
    let total: i64 = rows.iter().map(|(_, m)| m.minor()).sum();
    assert_eq!(total, v.iter().map(|i| i.total_minor).sum::<i64>());
    assert_eq!(rows.iter().filter(|(g, _)| g == "paid").count(), 5);
    assert!(rows.iter().all(|(_, m)| m.currency() == Currency::USD));
    let (rows, _) = drain(s.as_ref(), q(Kind::Payments, Grouping::Month), 2).await;
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|(g, _)| *g == at.format("%Y-%m").to_string()), "{rows:?}");
    // The range is half-open and per org.
    let later = ReportQuery { from: at + chrono::Duration::milliseconds(1), ..q(Kind::Invoices, Grouping::Status) };
    assert_eq!(drain(s.as_ref(), later, 100).await.0.len(), 0);
    let until_at = ReportQuery { until: at, ..q(Kind::Invoices, Grouping::Status) };
    assert_eq!(drain(s.as_ref(), until_at, 100).await.0.len(), 0);
}
