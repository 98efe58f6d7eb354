//! The SQLite worker's writes share one kept connection while it claims, and give it back.

use crate::support::{claim, within};
use keel_queue::{Finish, NewJob, Outcome, SqliteStore, Store};
use keel_storage::Db;
use keel_testkit::TestDb;
use serde_json::json;
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

/// The worker's scheduled-task and retention writes, and the store's own enqueues, take the
/// same write turn as its claims and finishes. On a pool whose connections never wait for
/// SQLite's lock (busy timeout 0), a write that skipped the turn would meet a claim or finish
/// holding the lock and fail with "database is locked"; taking turns, none does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_retention_and_enqueue_writes_take_turns_with_claims() {
    let t = TestDb::sqlite(crate::SCHEMAS).await;
    let Db::Sqlite(shared) = t.db.clone() else { panic!("a SQLite test database") };
    let options = (*shared.connect_options()).clone().busy_timeout(Duration::ZERO);
    let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(4).connect_with(options).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::new(pool.clone()));
    const ROUNDS: usize = 200;
    store.enqueue_many((0..ROUNDS).map(|i| NewJob::new("k.x", &json!({ "i": i })).unwrap()).collect()).await.unwrap();

    let workers = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..ROUNDS {
                let jobs = store.claim(claim("default", 1)).await?;
                let done = jobs.iter().map(|j| Finish { lease: j.lease().unwrap(), outcome: Outcome::Completed });
                store.finish(done.collect()).await?;
            }
            Ok::<_, keel_queue::QueueError>(())
        })
    };
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
