//! How many claims one queue's loops keep in flight: several while a backlog of quick jobs
//! starves the run slots, one while slow jobs keep them full (PostgreSQL, where
//! `pg_stat_activity` shows the claims waiting on a lock).

use crate::support::{fixture, within, Fixture};
use crate::worker::settings;
use keel_queue::worker::WorkerReport;
use keel_queue::{KindOptions, NewJob, QueueError, Registry, Worker};
use keel_testkit::TestDb;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

/// Claims read `keel_queue_pauses`: an exclusive lock on it holds every claim at its start.
const LOCK_CLAIMS: &str = "LOCK TABLE keel_queue_pauses IN ACCESS EXCLUSIVE MODE";

/// Claim statements of this database: waiting on a lock (held by the test) or running.
async fn claims(watch: &mut sqlx::PgConnection) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), \
                count(*) FILTER (WHERE wait_event_type IS DISTINCT FROM 'Lock') \
         FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' \
           AND query LIKE '%FOR UPDATE SKIP LOCKED%' AND pid <> pg_backend_pid()",
    )
    .fetch_one(watch)
    .await
    .unwrap()
}

/// Enqueues `n` jobs of `kind` and starts a worker at concurrency 5 with a batch of 5 (the
/// default batch follows the concurrency) on them.
async fn backlog_and_worker(f: &Fixture, reg: Registry, kind: &str, n: usize) -> (CancellationToken, Running) {
    let jobs = (0..n).map(|i| NewJob::new(kind, &json!({ "i": i })).unwrap()).collect();
    f.store.enqueue_many(jobs).await.unwrap();
    let w = Worker::new(f.store.clone(), reg, settings(5, 5));
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    (cancel, tokio::spawn(async move { w.run(c).await }))
}

type Running = tokio::task::JoinHandle<Result<WorkerReport, QueueError>>;

/// A batch of 5 (the default follows the concurrency) gets four claims in flight (its claim
/// loops: enough for 128 jobs, at most four) once the backlog starves the run slots, never
/// more.
#[tokio::test]
async fn a_backlog_of_quick_jobs_gets_several_claims_in_flight_when_the_batch_is_small() {
    let Some(t) = TestDb::postgres("queue::claims::quick", crate::SCHEMAS).await else { return };
    let url = t.url.clone();
    let f = fixture(t);
    let ran = Arc::new(AtomicUsize::new(0));
    let (fifty, all) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let mut reg = Registry::new();
    let (r, h, a) = (ran.clone(), fifty.clone(), all.clone());
    reg.register_json("work", KindOptions::default(), move |_, _| {
        let n = r.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 50 {
            h.notify_one();
        }
        if n == 3000 {
            a.notify_one();
        }
        async { Ok(()) }
    })
    .unwrap();
    let (cancel, run) = backlog_and_worker(&f, reg, "work", 3000).await;
    within("50 jobs to run", fifty.notified()).await;
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    let mut lock = sqlx::Connection::begin(&mut admin).await.unwrap();
    sqlx::query(LOCK_CLAIMS).execute(&mut *lock).await.unwrap();
    let mut watch = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    within("four claims waiting at once", async {
        loop {
            let (waiting, _) = claims(&mut watch).await;
            assert!(waiting <= 4, "at most four claims in flight, saw {waiting}");
            if waiting == 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    lock.commit().await.unwrap();
    within("all 3,000 jobs to run", all.notified()).await;
    cancel.cancel();
    let report = within("the worker to stop", run).await.unwrap().unwrap();
    assert_eq!(report.metrics.completed, 3000, "each job finished once");
    assert_eq!(ran.load(Ordering::SeqCst), 3000, "each handler ran once");
}

/// Slow jobs keep the run slots full, so the helper loops stay parked even in a backlog: the
/// worker holds its running jobs and one prefetched batch, and leaves the rest to other
/// workers.
#[tokio::test]
async fn slow_jobs_in_a_backlog_are_claimed_one_batch_at_a_time() {
    let Some(t) = TestDb::postgres("queue::claims::slow", crate::SCHEMAS).await else { return };
    let url = t.url.clone();
    let f = fixture(t);
    let gate = Arc::new(Semaphore::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let mut reg = Registry::new();
    let (g, s) = (gate.clone(), started.clone());
    reg.register_json("slow", KindOptions::default(), move |_, _| {
        let g = g.clone();
        s.fetch_add(1, Ordering::SeqCst);
        async move {
            g.acquire().await.map(|p| p.forget()).ok();
            Ok(())
        }
    })
    .unwrap();
    let (cancel, run) = backlog_and_worker(&f, reg, "slow", 40).await;
    let mut watch = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    let processing = "SELECT count(*) FROM keel_jobs WHERE state = 'processing'";
    // Five running and a prefetched batch of five: what one claim loop holds.
    within("the slots full and a batch prefetched", async {
        loop {
            let n: i64 = sqlx::query_scalar(processing).fetch_one(&mut watch).await.unwrap();
            if started.load(Ordering::SeqCst) == 5 && n >= 10 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // Hold any further claim at its start, and wait for the ones already running to end.
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    let mut lock = sqlx::Connection::begin(&mut admin).await.unwrap();
    sqlx::query(LOCK_CLAIMS).execute(&mut *lock).await.unwrap();
    let waiting = within("no claim running", async {
        loop {
            let (waiting, running) = claims(&mut watch).await;
            if running == 0 {
                return waiting;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let held: i64 = sqlx::query_scalar(processing).fetch_one(&mut watch).await.unwrap();
    assert_eq!((held, waiting), (10, 0), "one loop's worth claimed (5 running, 5 prefetched), no helper claim");
    lock.commit().await.unwrap();
    gate.add_permits(40);
    let done = "SELECT count(*) FROM keel_jobs_completed";
    within("all 40 jobs to finish", async {
        while sqlx::query_scalar::<_, i64>(done).fetch_one(&mut watch).await.unwrap() < 40 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    cancel.cancel();
    let report = within("the worker to stop", run).await.unwrap().unwrap();
    assert_eq!(report.metrics.completed, 40, "each job finished once");
}
