//! What the queue offers its host's metrics: the job observer (starts with their lag, recorded
//! finishes with their outcome), the database-bounded snapshot, and the snapshot shared by all
//! readers of an interval.

use crate::support::fixture;
use crate::worker::settings;
use keel_queue::{
    JobError, JobFinished, JobObserver, JobOutcome, JobStarted, KindOptions, NewJob, QueueError, QueueSnapshot,
    Registry, SharedSnapshot, StateCounts, Worker,
};
use keel_testkit::{backend_tests, TestDb};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

backend_tests!(observer_hears_starts_and_recorded_finishes, bounded_snapshot_is_stopped_by_the_database);

#[derive(Default)]
struct Seen {
    started: Mutex<Vec<(String, String, u32, Duration)>>,
    finished: Mutex<Vec<(String, String, JobOutcome)>>,
}

impl JobObserver for Seen {
    fn started(&self, j: &JobStarted<'_>) {
        self.started.lock().unwrap().push((j.queue.into(), j.kind.into(), j.attempt, j.lag));
    }
    fn finished(&self, j: &JobFinished<'_>) {
        self.finished.lock().unwrap().push((j.queue.into(), j.kind.into(), j.outcome));
    }
}

async fn observer_hears_starts_and_recorded_finishes(t: TestDb) {
    let f = fixture(t);
    let mut reg = Registry::new();
    reg.register_json("k.ok", KindOptions::default(), |_, _| async { Ok(()) }).unwrap();
    reg.register_json("k.flaky", KindOptions::default(), |_, _| async { Err(JobError::retryable("later")) }).unwrap();
    reg.register_json("k.bad", KindOptions::default(), |_, _| async { Err(JobError::permanent("no")) }).unwrap();
    reg.register_json("k.junk", KindOptions::default(), |_, _| async { Err(JobError::unprocessable("junk")) }).unwrap();
    let seen = Arc::new(Seen::default());
    let w = Worker::new(f.store.clone(), reg, settings(4, 10)).with_observer(seen.clone());
    for kind in ["k.ok", "k.flaky", "k.bad", "k.junk"] {
        f.store.enqueue(NewJob::new(kind, &json!({})).unwrap()).await.unwrap();
    }
    // Due since enqueue: each starts exactly 7 s late by the store's clock.
    f.clock.advance(Duration::from_secs(7));
    w.tick("default").await.unwrap();
    let mut started = seen.started.lock().unwrap().clone();
    started.sort();
    let lag = Duration::from_secs(7);
    assert_eq!(
        started,
        vec![
            ("default".into(), "k.bad".into(), 1, lag),
            ("default".into(), "k.flaky".into(), 1, lag),
            ("default".into(), "k.junk".into(), 1, lag),
            ("default".into(), "k.ok".into(), 1, lag),
        ]
    );
    let mut finished = seen.finished.lock().unwrap().clone();
    finished.sort_by(|a, b| a.1.cmp(&b.1));
    let outcomes: Vec<(&str, &str)> = finished.iter().map(|(_, k, o)| (k.as_str(), o.as_str())).collect();
    assert_eq!(
        outcomes,
        [("k.bad", "failed"), ("k.flaky", "retried"), ("k.junk", "dead_lettered"), ("k.ok", "completed")]
    );
}

async fn bounded_snapshot_is_stopped_by_the_database(t: TestDb) {
    let f = fixture(t);
    let jobs: Vec<NewJob> = (0..3000).map(|i| NewJob::new("k.x", &json!({ "i": i })).unwrap()).collect();
    f.store.enqueue_many(jobs).await.unwrap();
    let bounded = f.store.snapshot_within(Duration::from_secs(30)).await.unwrap();
    assert_eq!(bounded.counts, f.store.snapshot().await.unwrap().counts, "within its bound it is the same snapshot");
    assert_eq!(bounded.counts.pending, 3000);

    let stopped = match &f.t.db {
        // SQLite: a deadline already passed; the progress handler interrupts the scan.
        keel_storage::Db::Sqlite(_) => f.store.snapshot_within(Duration::ZERO).await,
        // PostgreSQL: the table is locked, so the read waits until statement_timeout cancels it.
        keel_storage::Db::Postgres(p) => {
            let mut locker = p.begin().await.unwrap();
            sqlx::query("LOCK TABLE keel_jobs IN ACCESS EXCLUSIVE MODE").execute(&mut *locker).await.unwrap();
            let r = f.store.snapshot_within(Duration::from_millis(200)).await;
            locker.rollback().await.unwrap();
            r
        }
    };
    match stopped {
        Err(QueueError::TimedOut { what: "queue snapshot", .. }) => {}
        other => panic!("expected the database to stop the snapshot, got {other:?}"),
    }
    // The connection went back to the pool without its deadline: later reads are not cut short.
    for _ in 0..8 {
        assert_eq!(f.store.snapshot().await.unwrap().counts.pending, 3000);
    }
}

fn snapshot(pending: u64) -> QueueSnapshot {
    QueueSnapshot {
        taken_at: chrono::Utc::now(),
        counts: StateCounts { pending, ..StateCounts::default() },
        oldest_pending_age_s: 0.0,
        expired_leases: 0,
        by_kind: Default::default(),
        paused_queues: Vec::new(),
    }
}

/// A source that counts its queries and holds each until released, so readers overlap it.
fn gated_source(calls: Arc<AtomicU64>, gate: Arc<tokio::sync::Semaphore>, fail: bool) -> SharedSnapshot {
    SharedSnapshot::from_fn(Duration::from_secs(15), move || {
        let (calls, gate) = (calls.clone(), gate.clone());
        Box::pin(async move {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            gate.acquire().await.expect("gate open").forget();
            if fail {
                Err(QueueError::Unavailable("database down".into()))
            } else {
                Ok(snapshot(n))
            }
        })
    })
}

#[tokio::test(start_paused = true)]
async fn one_snapshot_per_interval_whatever_the_number_of_readers() {
    let calls = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let shared = gated_source(calls.clone(), gate.clone(), false);
    // 16 readers at once, the query still running: one query, one answer for all.
    let readers: Vec<_> = (0..16)
        .map(|_| {
            let s = shared.clone();
            tokio::spawn(async move { s.get().await })
        })
        .collect();
    tokio::task::yield_now().await;
    // A reader that gives up does not cancel the query the others wait for.
    let impatient = tokio::time::timeout(Duration::from_millis(10), shared.get()).await;
    assert!(impatient.is_err());
    gate.add_permits(1);
    for r in readers {
        assert_eq!(r.await.unwrap().unwrap().counts.pending, 1);
    }
    assert_eq!((calls.load(Ordering::SeqCst), shared.refreshes()), (1, 1));
    // Later in the same interval: the same snapshot, no query.
    tokio::time::advance(Duration::from_secs(14)).await;
    assert_eq!(shared.get().await.unwrap().counts.pending, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The next interval: one new query.
    tokio::time::advance(Duration::from_secs(1)).await;
    gate.add_permits(1);
    let (a, b) = tokio::join!(shared.get(), shared.get());
    assert_eq!((a.unwrap().counts.pending, b.unwrap().counts.pending), (2, 2));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(shared.last_good().unwrap().counts.pending, 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_snapshot_is_not_retried_before_the_interval_ends() {
    let calls = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(100));
    let shared = gated_source(calls.clone(), gate, true);
    for _ in 0..5 {
        let e = shared.get().await.expect_err("the source fails");
        assert!(matches!(*e, QueueError::Unavailable(_)), "{e}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a struggling database is asked once per interval");
    assert!(shared.last_good().is_none());
    tokio::time::advance(Duration::from_secs(15)).await;
    assert!(shared.get().await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
