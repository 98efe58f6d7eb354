//! Creates: per-org, per-day numbering, atomic batches, round trips through get and list.

use crate::support::{new_invoice, now, org, render, store};
use keel_billing::{format_number, Created, InvoiceStatus, ListFilter};
use keel_testkit::{backend_tests, TestDb};

backend_tests!(
    numbers_are_sequential_per_org_and_day_and_round_trip,
    concurrent_creates_never_collide,
    list_pages_filters_and_searches_literally,
);

async fn numbers_are_sequential_per_org_and_day_and_round_trip(t: TestDb) {
    let (a, b) = (org(&t, "A").await, org(&t, "B").await);
    let s = store(&t);
    let at = now();
    let day = at.format("%Y%m%d").to_string();
    let Created::New(first) = s.create(a, &[new_invoice("One", 100)], None, at, &render).await.unwrap() else {
        panic!("a new invoice")
    };
    let batch = [new_invoice("Two", 1), new_invoice("Three", 2), new_invoice("Four", 3)];
    let Created::New(more) = s.create(a, &batch, None, at, &render).await.unwrap() else { panic!("new invoices") };
    let numbers: Vec<&str> = first.iter().chain(&more).map(|i| i.number.as_str()).collect();
    assert_eq!(numbers, (1..=4).map(|n| format_number(&day, n)).collect::<Vec<_>>());
    let Created::New(theirs) = s.create(b, &[new_invoice("Theirs", 5)], None, at, &render).await.unwrap() else {
        panic!("a new invoice")
    };
    assert_eq!(theirs[0].number, format_number(&day, 1), "each org has its own counter");
    // What was returned is what is stored.
    let got = s.get(a, first[0].id).await.unwrap().unwrap();
    assert_eq!(got, first[0]);
    assert_eq!(got.total_minor, 200);
    assert_eq!(got.status, InvoiceStatus::Draft);
    assert!(s.get(b, first[0].id).await.unwrap().is_none(), "never across orgs");
    let page = s.list(a, &ListFilter { limit: 10, ..ListFilter::default() }).await.unwrap();
    assert_eq!(page.total, 4);
    assert_eq!(page.items.len(), 4);
    assert!(page.items.contains(&got));
}

async fn concurrent_creates_never_collide(t: TestDb) {
    let a = org(&t, "A").await;
    let s = store(&t);
    let at = now();
    let tasks = (0..20).map(|i| {
        let s = s.clone();
        tokio::spawn(async move {
            match s.create(a, &[new_invoice(&format!("C{i}"), 1)], None, at, &render).await.unwrap() {
                Created::New(v) => v[0].number.clone(),
                other => panic!("{other:?}"),
            }
        })
    });
    let mut numbers: Vec<String> = futures::future::join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 20);
    assert_eq!(numbers.last().unwrap(), &format_number(&at.format("%Y%m%d").to_string(), 20), "no gaps");
}

async fn list_pages_filters_and_searches_literally(t: TestDb) {
    let a = org(&t, "A").await;
    let s = store(&t);
    for name in ["100% Clean", "under_score", "back\\slash", "Plain"] {
        s.create(a, &[new_invoice(name, 1)], None, now(), &render).await.unwrap();
    }
    let list = |q: Option<&'static str>, status, limit, offset| {
        let s = s.clone();
        async move {
            let f = ListFilter { status, q, limit, offset };
            let page = s.list(a, &f).await.unwrap();
            (page.total, page.items.into_iter().map(|i| i.customer_name).collect::<Vec<_>>())
        }
    };
    assert_eq!(list(None, None, 2, 0).await, (4, vec!["Plain".to_owned(), "back\\slash".to_owned()]), "newest first");
    assert_eq!(list(None, None, 2, 10).await, (4, vec![]));
    for (term, hit) in [("%", "100% Clean"), ("_", "under_score"), ("\\", "back\\slash"), ("plain", "Plain")] {
        assert_eq!(list(Some(term), None, 10, 0).await, (1, vec![hit.to_owned()]), "{term}");
    }
    assert_eq!(list(None, Some(InvoiceStatus::Open), 10, 0).await.0, 0);
    assert_eq!(list(None, Some(InvoiceStatus::Draft), 10, 0).await.0, 4);
}
