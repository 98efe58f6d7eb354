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
        "SELECT run, reprep FROM sqlite_stmt WHERE sql LIKE 'UPDATE keel_jobs SET state = ''processing''%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let runs: i64 = claims.iter().map(|c| c.0).sum();
    assert_eq!(runs, 5, "every claim ran through the cached statement: {claims:?}");
    assert!(claims.iter().all(|c| c.1 == 0), "a claim was re-planned after a bind: {claims:?}");
}

/// A claim and a batch of completions each run as one statement outside any transaction
/// (no `BEGIN` and `COMMIT` hops on the single writer), where SQLite undoes a statement that
/// fails midway whole, unless it is `OR FAIL`, whose changes so far would be committed. A batch
/// with other outcomes runs in a transaction as `UPDATE OR FAIL` (no statement journal), which
/// the store must roll back whole. Either way nothing is half-claimed or half-finished.
#[tokio::test]
async fn a_claim_or_completion_failing_midway_leaves_every_job_as_it_was() {
    let t = TestDb::sqlite(crate::SCHEMAS).await;
    let Db::Sqlite(pool) = t.db.clone() else { panic!("a SQLite test database") };
    let store = SqliteStore::new(pool.clone());
    store.enqueue_many((0..3).map(|i| NewJob::new("k.x", &json!({ "i": i })).unwrap()).collect()).await.unwrap();
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
    // A unique index over one state fails the statement at the second row it moves there,
    // under the statement's own conflict handling (as a `CHECK` or `NOT NULL` would).
    let fail_second = |to: &str| format!("CREATE UNIQUE INDEX fail_second ON keel_jobs (state) WHERE state = '{to}'");
    // Schema changes on one connection: a `CREATE` is checked against the connection's own
    // cached schema, which may not have seen another connection's `DROP` yet.
    let mut ddl = pool.acquire().await.unwrap();

    sqlx::raw_sql(&fail_second("processing")).execute(&mut *ddl).await.unwrap();
    assert!(store.claim(claim("default", 3)).await.is_err(), "the claim failed at its second row");
    assert_eq!((count("pending").await, count("processing").await), (3, 0), "nothing was half-claimed");
    sqlx::raw_sql("DROP INDEX fail_second").execute(&mut *ddl).await.unwrap();
    let jobs = store.claim(claim("default", 3)).await.unwrap();
    assert_eq!(jobs.len(), 3, "the writer is usable again and claims them all");
    let finish = |j: &keel_queue::Job, outcome: Outcome| Finish { lease: j.lease().unwrap(), outcome };

    sqlx::raw_sql(&fail_second("completed")).execute(&mut *ddl).await.unwrap();
    let completions: Vec<Finish> = jobs[..2].iter().map(|j| finish(j, Outcome::Completed)).collect();
    assert!(store.finish(completions.clone()).await.is_err(), "the completions failed at their second row");
    assert_eq!((count("processing").await, count("completed").await), (3, 0), "nothing was half-finished");
    let mut mixed = completions.clone();
    mixed.push(finish(&jobs[2], Outcome::Failed { error: "no".into() }));
    assert!(store.finish(mixed.clone()).await.is_err(), "the mixed batch failed at its second completion");
    assert_eq!((count("processing").await, count("completed").await), (3, 0), "nothing was half-finished");

    sqlx::raw_sql("DROP INDEX fail_second").execute(&mut *ddl).await.unwrap();
    let done = store.finish(mixed).await.unwrap();
    let completed = Finished::Accepted(JobState::Completed);
    assert_eq!(done, vec![completed, completed, Finished::Accepted(JobState::Failed)]);
}
