//! The SQLite claim is planned once per connection, even once `ANALYZE` has left statistics.

use crate::support::claim;
use keel_queue::{JobStore, NewJob, SqliteStore};
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
