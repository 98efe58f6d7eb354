//! The SQLite claim: planned once per connection, even once `ANALYZE` has left statistics; a
//! claim or completion failing midway leaves nothing half-written.

use crate::support::claim;
use keel_queue::{Finish, Finished, JobState, JobStore, NewJob, Outcome, SqliteStore};
use keel_storage::Db;
use keel_testkit::TestDb;
use serde_json::json;

/// With STAT4 samples (left by `ANALYZE` or `PRAGMA optimize`), SQLite re-plans a statement on
/// every bind whose parameter it could estimate from: one comparing a bare parameter with an
/// indexed column. The claim runs many times a second on the single writer, so it must not be
/// one. `sqlite_stmt` (compiled in by this workspace's `.cargo/config.toml`) counts re-prepares.
#[tokio::test]
async fn the_claim_is_not_re_planned_on_every_call_after_analyze() {
    let t = TestDb::sqlite(crate::SCHEMAS).await;
    let Db::Sqlite(shared) = t.db.clone() else { panic!("a SQLite test database") };
    // One connection, so the claims and the check below share its statement cache.
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with((*shared.connect_options()).clone())
        .await
        .unwrap();
    let store = SqliteStore::new(pool.clone());
    store.enqueue_many((0..40).map(|i| NewJob::new("k.x", &json!({ "i": i })).unwrap()).collect()).await.unwrap();
    sqlx::query("ANALYZE").execute(&pool).await.unwrap();
    let samples: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_stat4").fetch_one(&pool).await.unwrap();
    assert!(samples > 0, "ANALYZE left STAT4 samples for the claim's plan to depend on");

    let mut claimed = 0;
    for _ in 0..5 {
        claimed += store.claim(claim("default", 2)).await.unwrap().len();
    }
    assert_eq!(claimed, 10);
    let claims: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT run, reprep FROM sqlite_stmt WHERE sql LIKE 'UPDATE OR FAIL keel_jobs SET state = ''processing''%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let runs: i64 = claims.iter().map(|c| c.0).sum();
    assert_eq!(runs, 5, "every claim ran through the cached statement: {claims:?}");
    assert!(claims.iter().all(|c| c.1 == 0), "a claim was re-planned after a bind: {claims:?}");
}

/// The claim and the completion run `UPDATE OR FAIL`: SQLite then keeps no statement journal
/// to undo that one statement alone (1% of the single writer's CPU in a burn-down, issue #19),
/// and a failure midway leaves the rows before it changed inside the transaction. The store
/// must roll the whole transaction back, so nothing is half-claimed or half-finished.
#[tokio::test]
async fn a_claim_or_completion_failing_midway_leaves_every_job_as_it_was() {
    let t = TestDb::sqlite(crate::SCHEMAS).await;
    let Db::Sqlite(pool) = t.db.clone() else { panic!("a SQLite test database") };
    let store = SqliteStore::new(pool.clone());
    store.enqueue_many((0..2).map(|i| NewJob::new("k.x", &json!({ "i": i })).unwrap()).collect()).await.unwrap();
    let count = |state: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM keel_jobs WHERE state = ?")
                .bind(state)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    // Fails the statement at whichever of the two rows it reaches second.
    let fail_second = |to: &str| {
        format!(
            "CREATE TRIGGER fail_second BEFORE UPDATE OF state ON keel_jobs WHEN NEW.state = '{to}' \
             AND (SELECT count(*) FROM keel_jobs WHERE state = '{to}') = 1 BEGIN SELECT RAISE(FAIL, 'midway'); END"
        )
    };

    // Schema changes on one connection: another one's cached schema could still show the
    // trigger after it was dropped (SQLite checks a statement against its connection's copy).
    let mut ddl = pool.acquire().await.unwrap();
    sqlx::raw_sql(&fail_second("processing")).execute(&mut *ddl).await.unwrap();
    assert!(store.claim(claim("default", 2)).await.is_err(), "the claim failed at its second row");
    assert_eq!((count("pending").await, count("processing").await), (2, 0), "nothing was half-claimed");
    sqlx::raw_sql("DROP TRIGGER fail_second").execute(&mut *ddl).await.unwrap();
    let jobs = store.claim(claim("default", 2)).await.unwrap();
    assert_eq!(jobs.len(), 2, "the writer is usable again and claims both");

    sqlx::raw_sql(&fail_second("completed")).execute(&mut *ddl).await.unwrap();
    let batch: Vec<Finish> =
        jobs.iter().map(|j| Finish { lease: j.lease().unwrap(), outcome: Outcome::Completed }).collect();
    assert!(store.finish(batch.clone()).await.is_err(), "the completion failed at its second row");
    assert_eq!((count("processing").await, count("completed").await), (2, 0), "nothing was half-finished");
    sqlx::raw_sql("DROP TRIGGER fail_second").execute(&mut *ddl).await.unwrap();
    let done = store.finish(batch).await.unwrap();
    assert_eq!(done, vec![Finished::Accepted(JobState::Completed); 2]);
}
