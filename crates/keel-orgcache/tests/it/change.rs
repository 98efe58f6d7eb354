//! Skipping unchanged writes.

use crate::org;
use keel_orgcache::ChangeFilter;
use std::time::Duration;

#[derive(Hash)]
struct AlertRow<'a> {
    kind: &'a str,
    severity: u8,
    message: &'a str,
}

#[tokio::test]
async fn an_unchanged_value_is_skipped_only_after_a_recorded_write() {
    let f = ChangeFilter::new(10_000, Duration::from_secs(3600));
    let (a, b) = (org(), org());
    let row = AlertRow { kind: "overdue_invoices", severity: 2, message: "3 invoices overdue" };

    let fp = f.check(a, "alert:overdue", &row).await.expect("first write goes through");
    // The write failed and was never recorded: the next poll must try again.
    assert!(f.check(a, "alert:overdue", &row).await.is_some());
    f.record(a, "alert:overdue", fp).await;
    assert!(f.check(a, "alert:overdue", &row).await.is_none(), "unchanged: skip the write");

    let changed = AlertRow { message: "4 invoices overdue", ..row };
    assert!(f.check(a, "alert:overdue", &changed).await.is_some());
    assert!(f.check(b, "alert:overdue", &changed).await.is_some(), "orgs are tracked separately");

    f.forget(a, "alert:overdue").await;
    assert!(f.check(a, "alert:overdue", &row).await.is_some());
}
