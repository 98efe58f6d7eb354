//! Retention: events older than the retention period are deleted, newer ones kept.

use crate::{count_rows, now, sample};
use chrono::Duration;
use keel_telemetry::{insert_samples, prune_events, SampleKind};
use keel_testkit::{backend_tests, TestDb};

backend_tests!(prune_deletes_only_expired_events);

async fn prune_deletes_only_expired_events(t: TestDb) {
    let mut samples = Vec::new();
    for days in [0, 29, 31, 45] {
        for i in 0..3 {
            samples.push(sample("/a", SampleKind::Server, i, 1.0, now() - Duration::days(days)));
        }
    }
    insert_samples(&t.db, &samples).await.unwrap();
    assert_eq!(prune_events(&t.db, 30, now()).await.unwrap(), 6);
    assert_eq!(count_rows(&t.db).await, 6);
    assert_eq!(prune_events(&t.db, 30, now()).await.unwrap(), 0, "idempotent");
    assert_eq!(prune_events(&t.db, 1, now()).await.unwrap(), 3);
}
