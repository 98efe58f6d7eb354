//! Route telemetry retention: the worker registers `telemetry_retention`, and one run of it
//! deletes the events older than `ROUTE_TELEMETRY_RETENTION_DAYS` (default 30) and keeps the rest.

use chrono::{Duration as ChronoDuration, Utc};
use keel_queue::cron::CronTick;
use keel_queue::store::CronOutcome;
use keel_storage::Db;
use keel_telemetry::{insert_samples, RouteSample, RouteTemplate};
use keel_testkit::{backend_tests, TestDb};
use std::time::Duration;

backend_tests!(telemetry_retention_prunes_only_expired_events);

async fn occurred_at_ms(db: &Db) -> Vec<i64> {
    match db {
        Db::Postgres(p) => sqlx::query_scalar::<_, chrono::DateTime<Utc>>(
            "SELECT occurred_at FROM route_performance_events ORDER BY occurred_at",
        )
        .fetch_all(p)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.timestamp_millis())
        .collect(),
        Db::Sqlite(p) => sqlx::query_scalar("SELECT occurred_at FROM route_performance_events ORDER BY occurred_at")
            .fetch_all(p)
            .await
            .unwrap(),
    }
}

async fn telemetry_retention_prunes_only_expired_events(t: TestDb) {
    let now = Utc::now();
    // Either side of the default 30 days, a day clear of it so the run's own clock cannot matter.
    let (old, recent) = (now - ChronoDuration::days(31), now - ChronoDuration::days(29));
    let route = RouteTemplate::parse("/api/clients/:id").unwrap();
    let sample = |at| RouteSample::server(route.clone(), "GET", 200, Duration::from_millis(40), at);
    insert_samples(&t.db, &[sample(old), sample(recent)]).await.unwrap();

    // The worker exactly as keel-worker and keel-api build it, with the default configuration.
    let outbox = tempfile::tempdir().unwrap();
    let src = keel_config::MapSource(
        [("KEEL_MAIL_OUTBOX_DIR".to_owned(), outbox.path().to_str().unwrap().to_owned())].into_iter().collect(),
    );
    let config = keel_worker::WorkerConfig::load(&src).unwrap();
    assert_eq!(config.telemetry_retention_days, 30);
    let ctx = keel_worker::WorkerContext { db: t.db.clone(), config, switches: keel_queue::SwitchBoard::default() };
    let worker = keel_worker::build(&ctx).unwrap();

    // One tick of the registered task: due at once (never run before), so it runs now.
    let tick = worker.cron_tick("telemetry_retention").await.unwrap();
    let CronTick::Ran { run, lease_lost: false } = tick else { panic!("expected a run, got {tick:?}") };
    assert_eq!((run.outcome, run.items, run.error.as_deref()), (Some(CronOutcome::Ok), 1, None), "{run:?}");
    assert_eq!(occurred_at_ms(&t.db).await, vec![recent.timestamp_millis()], "only the expired event is gone");

    // Hourly: the next tick is not due, and the kept event stays.
    let tick = worker.cron_tick("telemetry_retention").await.unwrap();
    assert!(matches!(tick, CronTick::NotDue { .. }), "{tick:?}");
    assert_eq!(occurred_at_ms(&t.db).await, vec![recent.timestamp_millis()]);
}
