//! The SQLite worker's writes share one kept connection while it claims, and give it back.

use crate::support::{claim, within};
use keel_queue::{Finish, KindOptions, NewJob, Outcome, Registry, SqliteStore, Store, Worker};
use keel_storage::Db;
use keel_testkit::TestDb;
use serde_json::json;
use sqlx::Connection;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Claims, finishes and heartbeats run on one connection kept from a pool of three or more
/// (no release check, a warm page cache); smaller pools keep none. Once the claim loops stop
/// the store keeps nothing, even for a finish that comes after, so the pool can close.
#[tokio::test]
async fn worker_writes_keep_one_connection_only_while_claiming() {
    let t = TestDb::sqlite(crate::SCHEMAS).await;
    let Db::Sqlite(shared) = t.db.clone() else { panic!("a SQLite test database") };
    let options = (*shared.connect_options()).clone();
    for (size, kept) in [(3u32, 1u32), (2, 0)] {
        // A short acquire timeout: the pool running dry is what shows a connection is kept.
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(size)
            .acquire_timeout(Duration::from_millis(500))
            .connect_with(options.clone())
            .await
            .unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::new(pool.clone()));
        store.enqueue_many((0..4).map(|i| NewJob::new("k.x", &json!({ "i": i })).unwrap()).collect()).await.unwrap();
        let mut jobs = Vec::new();
        for _ in 0..3 {
            jobs.extend(store.claim(claim("default", 1)).await.unwrap());
        }
        assert_eq!(jobs.len(), 3);
        let done = |i: usize| vec![Finish { lease: jobs[i].lease().unwrap(), outcome: Outcome::Completed }];
        store.finish(done(0)).await.unwrap();
        assert!(store.heartbeat(vec![jobs[1].lease().unwrap()], Duration::from_secs(30)).await.unwrap().is_empty());

        let mut lent = Vec::new();
        for _ in 0..size - kept {
            lent.push(pool.acquire().await.expect("a connection the writes gave back"));
        }
        if kept == 1 {
            assert!(pool.acquire().await.is_err(), "pool of {size}: the worker's writes keep their connection");
        }
        drop(lent);

        // The claim loops stop; the completer still finishes what ran. Neither keeps anything.
        store.claims_stopped();
        store.finish(done(1)).await.unwrap();
        let mut all = Vec::new();
        for _ in 0..size {
            all.push(pool.acquire().await.expect("every connection back once claims stopped"));
        }
        drop(all);
        within("the pool to close", pool.close()).await;
        drop(store);
    }
}

/// Rounds of claims and finishes in the tests below, as many as jobs [`never_waiting_store`] holds.
const ROUNDS: usize = 200;

/// A store on a pool whose connections never wait for SQLite's lock (busy timeout 0), holding
/// [`ROUNDS`] jobs; the test database lives as long as the first half.
async fn never_waiting_store() -> (TestDb, Arc<dyn Store>) {
    let t = TestDb::sqlite(crate::SCHEMAS).await;
    let Db::Sqlite(shared) = t.db.clone() else { panic!("a SQLite test database") };
    let options = (*shared.connect_options()).clone().busy_timeout(Duration::ZERO);
    let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(4).connect_with(options).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::new(pool));
    store.enqueue_many((0..ROUNDS).map(|i| NewJob::new("k.x", &json!({ "i": i })).unwrap()).collect()).await.unwrap();
    (t, store)
}

/// The worker's side: claims one job and finishes it, [`ROUNDS`] times.
async fn claim_and_finish(store: Arc<dyn Store>) -> Result<(), keel_queue::QueueError> {
    for _ in 0..ROUNDS {
        let jobs = store.claim(claim("default", 1)).await?;
        let done = jobs.iter().map(|j| Finish { lease: j.lease().unwrap(), outcome: Outcome::Completed });
        store.finish(done.collect()).await?;
    }
    Ok(())
}

/// The worker's scheduled-task and retention writes, and the store's own enqueues, take the
/// same write turn as its claims and finishes. On a pool whose connections never wait for
/// SQLite's lock (busy timeout 0), a write that skipped the turn would meet a claim or finish
/// holding the lock and fail with "database is locked"; taking turns, none does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_retention_and_enqueue_writes_take_turns_with_claims() {
    let (_t, store) = never_waiting_store().await;

    let workers = tokio::spawn(claim_and_finish(store.clone()));
    let scheduled = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..ROUNDS {
                store.cron_recover_stale().await?;
                store.prune(Duration::from_secs(3600)).await?;
                store.enqueue(NewJob::new("k.y", &json!({})).unwrap().queue("other")).await?;
            }
            Ok::<_, keel_queue::QueueError>(())
        })
    };
    let (w, s) = tokio::join!(workers, scheduled);
    w.unwrap().expect("claims and finishes never met a locked database");
    s.unwrap().expect("scheduled-task, retention and enqueue writes never met a locked database");
    let counts = store.snapshot().await.unwrap().counts;
    assert_eq!((counts.completed, counts.pending), (ROUNDS as u64, ROUNDS as u64));
}

/// The operators' verbs (cancel, retry, requeue, queue and task pauses, the run history's
/// retention) take the same write turn, so an operator acting in the API beside a busy worker
/// never waits on SQLite's busy handler. Busy timeout 0 as above: a verb that skipped the turn
/// would meet a claim or finish holding the lock and fail with "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_verbs_take_turns_with_claims() {
    let (_t, store) = never_waiting_store().await;
    let parked = store.enqueue(NewJob::new("k.y", &json!({})).unwrap().queue("other")).await.unwrap().id();

    let workers = tokio::spawn(claim_and_finish(store.clone()));
    let operator = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..ROUNDS {
                store.pause_queue("other".into(), Some("ops".into())).await?;
                store.cancel(parked).await?;
                store.retry(parked).await?;
                store.requeue_dead(None).await?;
                store.resume_queue("other".into()).await?;
                store.cron_pause("nightly".into(), None).await?;
                store.cron_resume("nightly".into()).await?;
                store.cron_prune(Duration::from_secs(3600)).await?;
            }
            Ok::<_, keel_queue::QueueError>(())
        })
    };
    let (w, o) = tokio::join!(workers, operator);
    w.unwrap().expect("claims and finishes never met a locked database");
    o.unwrap().expect("the operators' verbs never met a locked database");
    let counts = store.snapshot().await.unwrap().counts;
    assert_eq!((counts.completed, counts.pending), (ROUNDS as u64, 1), "the parked job is pending again");
    assert!(store.paused_queues().await.unwrap().is_empty());
}

/// A write in turn that fails (here an enqueue of a job id that already exists) hands the
/// turn on only once its transaction's rollback has run: a dropped transaction only queues
/// it, and the next writer, on another connection that never waits for the lock, would meet
/// SQLite's lock still held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_enqueue_frees_the_lock_before_the_turn() {
    let (t, store) = never_waiting_store().await;
    let Db::Sqlite(shared) = t.db.clone() else { panic!("a SQLite test database") };
    let options = (*shared.connect_options()).clone().busy_timeout(Duration::ZERO);
    let mut other = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
    for i in 0..200 {
        let job = NewJob::new("k.z", &json!({ "i": i })).unwrap();
        store.enqueue(job.clone()).await.unwrap();
        let again = store.enqueue(job).await.expect_err("the same job id twice");
        assert!(again.to_string().contains("already exists"), "{again}");
        let next = other.begin_with("BEGIN IMMEDIATE").await;
        assert!(next.is_ok(), "round {i}: the next writer met the lock: {:?}", next.err());
        next.unwrap().rollback().await.unwrap();
    }
}

/// Another process (keel-ops, a second keel-api) takes no turn of this one's, so its writes do
/// meet SQLite's busy handler beside a busy worker. They must still get through within Keel's
/// busy timeout ([`keel_storage::SQLITE_BUSY_TIMEOUT`]), which holds only while the worker lets
/// SQLite's lock go between its writes, never holding it across claims. A connection of its
/// own with Keel's connection options stands for that process: it pauses and resumes a queue,
/// each its own `BEGIN IMMEDIATE` transaction as keel-ops's verbs are, while a worker drains a
/// backlog; every write must get through. With busy timeout 0 on that connection this fails
/// with "database is locked": the writes do meet the worker's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_writes_get_through_beside_a_busy_worker() {
    const BACKLOG: u64 = 10_000;
    let t = TestDb::sqlite(crate::SCHEMAS).await;
    let Db::Sqlite(shared) = t.db.clone() else { panic!("a SQLite test database") };
    let mut other = sqlx::SqliteConnection::connect_with(&shared.connect_options()).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::new(shared.clone()));
    for chunk in 0..BACKLOG / 1_000 {
        let jobs = (0..1_000).map(|i| NewJob::new("k.x", &json!({ "i": chunk * 1_000 + i })).unwrap());
        store.enqueue_many(jobs.collect()).await.unwrap();
    }
    let ran = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Arc::new(tokio::sync::Notify::new());
    let mut reg = Registry::new();
    let (r, s) = (ran.clone(), started.clone());
    reg.register_json("k.x", KindOptions::default(), move |_, _| {
        if r.fetch_add(1, Ordering::SeqCst) == 0 {
            s.notify_one();
        }
        async { Ok(()) }
    })
    .unwrap();
    let worker = Arc::new(Worker::new(store.clone(), reg, crate::worker::settings(32, 512)));
    let cancel = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn({
        let (w, c) = (worker.clone(), cancel.clone());
        async move { w.run(c).await }
    });
    within("the worker's first job", started.notified()).await;

    let mut beside_the_worker = 0;
    loop {
        let running = ran.load(Ordering::SeqCst) < BACKLOG;
        for sql in [
            "INSERT INTO keel_queue_pauses (queue, paused_at, paused_by) VALUES ('ops', '2026-01-01T00:00:00Z', 'ops')",
            "DELETE FROM keel_queue_pauses WHERE queue = 'ops'",
        ] {
            let mut tx = other.begin_with("BEGIN IMMEDIATE").await.expect("another process's write got the lock");
            sqlx::query(sql).execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }
        if !running {
            break;
        }
        beside_the_worker += 1;
    }
    assert!(beside_the_worker > 0, "some writes ran while the worker drained its backlog");
    cancel.cancel();
    within("the worker to stop", run).await.unwrap().unwrap();
    assert_eq!(store.snapshot().await.unwrap().counts.completed, BACKLOG);
}
