//! A SQLite connection's thread hands a statement's rows over without waiting for the caller
//! to read them (`SQLITE_ROW_BUFFER`), so a slow reader never holds the single write lock.

use futures::TryStreamExt;
use keel_storage::Db;
use keel_testkit::TestDb;
use sqlx::Row;

/// An `UPDATE … RETURNING` of 1,000 rows (a worker's largest finish) runs to its end while
/// the caller has read one row, and its write lock is free for the next writer. With sqlx's
/// default of 50 rows the thread stopped at the 51st, still inside the statement, and the
/// next `BEGIN IMMEDIATE` failed after the busy timeout.
#[tokio::test]
async fn a_large_returning_statement_ends_before_its_rows_are_read() {
    let t = TestDb::sqlite(&[]).await;
    let Db::Sqlite(pool) = &t.db else { unreachable!() };
    sqlx::query("CREATE TABLE jobs (n INTEGER NOT NULL)").execute(pool).await.unwrap();
    sqlx::query(
        "INSERT INTO jobs WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000) \
         SELECT n FROM c",
    )
    .execute(pool)
    .await
    .unwrap();
    let mut reader = pool.acquire().await.unwrap();
    let mut rows = sqlx::query("UPDATE jobs SET n = n + 1000 RETURNING n").fetch(&mut *reader);
    let first: i64 = rows.try_next().await.unwrap().expect("a first row").get(0);
    assert!(first > 1000, "the update ran");
    // SQLite's busy handler waits (up to the busy timeout) for the writer before this one.
    let mut writer = pool.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *writer).await.expect("the write lock is free: the statement ended");
    sqlx::query("ROLLBACK").execute(&mut *writer).await.unwrap();
    let mut read = 1;
    while rows.try_next().await.unwrap().is_some() {
        read += 1;
    }
    assert_eq!(read, 1000, "every row arrives");
}
