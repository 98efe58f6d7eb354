//! The sample buffer: never waits, drops and counts when full, writes batches, flushes on
//! shutdown.

use crate::{count_rows, minutes_ago, sample};
use keel_telemetry::{route_pipeline, MetricsRegistry, SampleKind, WriterConfig};
use keel_testkit::{backend_tests, TestDb};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn quiet(capacity: usize, batch_size: usize) -> WriterConfig {
    // An hour-long interval: within a test only a full batch or shutdown makes the writer write.
    WriterConfig { capacity, batch_size, flush_interval: Duration::from_secs(3600), ..WriterConfig::default() }
}

backend_tests!(
    full_buffer_drops_and_counts,
    writer_flushes_everything_on_shutdown,
    a_full_batch_is_written_without_waiting_for_the_interval,
    after_shutdown_samples_are_dropped_not_lost_silently,
    failed_writes_are_counted
);

async fn full_buffer_drops_and_counts(t: TestDb) {
    let (rec, _writer) = route_pipeline(t.db.clone(), quiet(3, 100));
    let results: Vec<bool> =
        (0..5).map(|i| rec.record(sample("/a", SampleKind::Server, i, 1.0, minutes_ago(1)))).collect();
    assert_eq!(results, [true, true, true, false, false]);
    let s = rec.stats();
    assert_eq!((s.recorded, s.dropped, s.buffered, s.written), (3, 2, 3, 0));
    // The counters are exported as metrics.
    let registry = MetricsRegistry::new();
    rec.register_metrics(&registry).unwrap();
    let text = registry.render();
    assert!(text.contains("\nkeel_telemetry_route_samples_dropped_total 2\n"), "{text}");
    assert!(text.contains("\nkeel_telemetry_route_samples_buffered 3\n"), "{text}");
}

async fn writer_flushes_everything_on_shutdown(t: TestDb) {
    let (rec, writer) = route_pipeline(t.db.clone(), quiet(10_000, 1_000));
    let stop = CancellationToken::new();
    let task = tokio::spawn(writer.run(stop.clone()));
    for i in 0..250 {
        assert!(rec.record(sample("/a", SampleKind::Server, i, 1.0, minutes_ago(1))));
    }
    // Below the batch size and long before the interval: nothing forces a write but shutdown.
    stop.cancel();
    let stats = task.await.unwrap();
    assert_eq!((stats.recorded, stats.written, stats.dropped, stats.buffered), (250, 250, 0, 0));
    assert_eq!(count_rows(&t.db).await, 250);
}

async fn a_full_batch_is_written_without_waiting_for_the_interval(t: TestDb) {
    let (rec, writer) = route_pipeline(t.db.clone(), quiet(10_000, 50));
    let stop = CancellationToken::new();
    let task = tokio::spawn(writer.run(stop.clone()));
    for i in 0..50 {
        rec.record(sample("/a", SampleKind::Server, i, 1.0, minutes_ago(1)));
    }
    // The 50th sample wakes the writer; wait (bounded) until it reports the rows written.
    tokio::time::timeout(Duration::from_secs(30), async {
        while rec.stats().written < 50 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the writer wrote the full batch");
    assert_eq!(count_rows(&t.db).await, 50);
    stop.cancel();
    task.await.unwrap();
}

async fn after_shutdown_samples_are_dropped_not_lost_silently(t: TestDb) {
    let (rec, writer) = route_pipeline(t.db.clone(), quiet(100, 10));
    let stop = CancellationToken::new();
    stop.cancel();
    writer.run(stop).await;
    assert!(!rec.record(sample("/a", SampleKind::Server, 1, 1.0, minutes_ago(1))));
    assert_eq!(rec.stats().dropped, 1);
}

async fn failed_writes_are_counted(t: TestDb) {
    let (rec, writer) = route_pipeline(t.db.clone(), quiet(100, 10));
    for i in 0..15 {
        rec.record(sample("/a", SampleKind::Server, i, 1.0, minutes_ago(1)));
    }
    t.db.close().await;
    let stop = CancellationToken::new();
    stop.cancel();
    let stats = writer.run(stop).await;
    assert_eq!((stats.written, stats.write_errors, stats.lost), (0, 2, 15));
}
