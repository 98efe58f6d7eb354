//! The SQLite worker's own write connection, kept between its writes.
//!
//! The store's writes (the worker's claims, heartbeats, finishes, releases, rescues,
//! scheduled-task runs and retention; enqueues; the operators' verbs) take the file's write
//! turn ([`super::sqlite_turn`]) one after another, on one connection while the worker claims.
//! The worker's own writes each used to borrow a pooled connection, which cost, on SQLite's
//! single writer:
//! - keel-storage's release check on the way back (`BEGIN`, then `ROLLBACK`: two more hops to
//!   the connection's thread);
//! - a cold page cache: in WAL mode a connection drops its whole page cache when it sees that
//!   another connection wrote since its last transaction, so claims and finishes alternating
//!   over the pool's connections re-read and re-allocated their pages every time.
//!
//! One kept connection for all of them skips both (issue #19, measured in `docs/benchmarks.md`).
//! Its transactions always end before it is put back: a write that fails, or is dropped
//! midway, is closed and its turn handed on only then (see [`Write::failed`]).
//!
//! It is kept only while the worker claims: a claim arms it, [`Writer::give_back`] (the
//! worker's claim loops stopped) disarms it, and a write finishing while disarmed returns it
//! to the pool, so a host closing its pool never waits for a stopped worker's connection.
//! Pools smaller than [`MIN_POOL_TO_KEEP`] keep nothing.

use super::sqlite::BEGIN;
use super::sqlite_turn::WriteTurn;
use sqlx::pool::PoolConnection;
use sqlx::{Connection, Sqlite, SqliteConnection, SqlitePool};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

/// The smallest pool that keeps a write connection: readers and the callers' own
/// transactions (`enqueue_in`) still have two between them.
pub(crate) const MIN_POOL_TO_KEEP: u32 = 3;

/// One statement ready to run, its parameters bound.
pub(crate) type Statement<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// The turn on the file and the store's kept connection; clones share both.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    turn: WriteTurn,
    kept: Arc<Mutex<Option<PoolConnection<Sqlite>>>>,
    armed: Arc<AtomicBool>,
}

/// One write's turn and connection. [`Write::done`] after its transaction committed (or
/// rolled back), [`Write::failed`] after an error; dropped without either (its future was
/// dropped midway, or an error returned early), it is ended as a failed write is, from a task
/// of its own.
pub(crate) struct Write {
    /// The turn and the connection, until the write ends.
    held: Option<(OwnedMutexGuard<()>, PoolConnection<Sqlite>)>,
    writer: Writer,
}

impl Writer {
    pub(crate) fn new(turn: WriteTurn) -> Self {
        Self { turn, kept: Arc::default(), armed: Arc::default() }
    }

    /// Waits for the turn, then lends the kept connection (or a pooled one). A claim passes
    /// `claim: true`, which arms the keeping.
    pub(crate) async fn lend(&self, pool: &SqlitePool, claim: bool) -> Result<Write, sqlx::Error> {
        let turn = self.turn.clone().lock_owned().await;
        if claim && pool.options().get_max_connections() >= MIN_POOL_TO_KEEP {
            self.armed.store(true, Ordering::SeqCst);
        }
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner()).take();
        let conn = match kept {
            Some(c) => c,
            None => pool.acquire().await?,
        };
        Ok(Write { held: Some((turn, conn)), writer: self.clone() })
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction in the write turn, and commits it when
    /// `body` returns `Ok`. On an error the transaction is rolled back before the turn is
    /// handed on ([`Write::settle`]): nothing half-written stays, and the next writer finds
    /// SQLite's lock free.
    pub(crate) async fn transaction<T, E: From<sqlx::Error>>(
        &self,
        pool: &SqlitePool,
        body: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut write = self.lend(pool, false).await?;
        let outcome = async {
            let mut tx = write.conn().begin_with(BEGIN).await?;
            let out = body(&mut tx).await?;
            tx.commit().await?;
            Ok(out)
        }
        .await;
        write.settle(outcome).await
    }

    /// Runs one statement in the write turn, outside any transaction: SQLite runs a lone
    /// statement as its own transaction, whole or not at all, without the `BEGIN` and `COMMIT`
    /// hops to the connection's thread.
    pub(crate) async fn lone(
        &self,
        pool: &SqlitePool,
        statement: Statement<'_>,
    ) -> Result<sqlx::sqlite::SqliteQueryResult, sqlx::Error> {
        let mut write = self.lend(pool, false).await?;
        let done = statement.execute(write.conn()).await?;
        write.done().await;
        Ok(done)
    }

    /// The worker's claim loops stopped: the kept connection goes back to the pool.
    pub(crate) fn give_back(&self) {
        self.armed.store(false, Ordering::SeqCst);
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(kept);
    }
}

impl Write {
    /// The connection to begin the write's transaction on.
    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        match &mut self.held {
            Some((_, conn)) => conn,
            // `held` is taken only by `done`, `failed` and `drop`, which consume the write.
            None => unreachable!("a write's connection is used after the write ended"),
        }
    }

    /// The write failed: the connection is closed, neither kept nor pooled (the pool opens
    /// another when one is needed). A transaction the write dropped has only queued its
    /// `ROLLBACK`, and after some errors (an I/O error or a full disk at `COMMIT`) SQLite has
    /// already rolled back on its own: that `ROLLBACK` then fails, sqlx goes on counting a
    /// transaction open, and the connection would refuse every later `BEGIN` (so every later
    /// write that needs a transaction, on the worker's kept connection, until it stopped).
    /// The turn is handed on once the close has come back: the connection runs its commands in
    /// order, so the rollback has run and SQLite's lock is free for the next writer.
    pub(crate) async fn failed(mut self) {
        if let Some(held) = self.held.take() {
            close_then_hand_on(held).await;
        }
    }

    /// Ends the write with its outcome: [`Write::done`] after a success, [`Write::failed`]
    /// after an error.
    pub(crate) async fn settle<T, E>(self, outcome: Result<T, E>) -> Result<T, E> {
        match &outcome {
            Ok(_) => self.done().await,
            Err(_) => self.failed().await,
        }
        outcome
    }

    /// The transaction ended: keep the connection for the next write while armed, hand the
    /// turn on, and let the next writer send its statement before this task goes on.
    pub(crate) async fn done(mut self) {
        let Some((turn, conn)) = self.held.take() else { return };
        let writer = &self.writer;
        if writer.armed.load(Ordering::SeqCst) {
            *writer.kept.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn);
        } else {
            drop(conn);
        }
        drop(turn);
        // Releasing the turn wakes the next writer into this runtime thread's LIFO slot,
        // which no other thread may steal: it would wait there while this task decodes its
        // rows and records its results (a claim's or a flush's, about 0.6 ms), and SQLite's
        // single writer would sit idle meanwhile (a quarter of a burn-down's time, issue #19).
        // The turn is handed straight to a waiting writer, so it is taken exactly when one
        // waited; a lone write (an enqueue with no worker about) goes on without yielding.
        if writer.turn.try_lock().is_err() {
            tokio::task::yield_now().await;
        }
    }
}

impl Drop for Write {
    /// A write dropped midway (its future dropped by a caller's timeout, say) may still have a
    /// statement running and its `ROLLBACK` only queued: handing the turn on now would send the
    /// next writer into SQLite's busy handler (about a second, in a test, behind a long insert).
    /// So the connection is closed and the turn handed on after, from a task of its own.
    fn drop(&mut self) {
        let Some(held) = self.held.take() else { return };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(close_then_hand_on(held));
        }
    }
}

/// Closes a write's connection, then hands its turn on: the connection runs its commands in
/// order, so whatever it was running and its rollback have ended, and SQLite's lock is free.
async fn close_then_hand_on((turn, conn): (OwnedMutexGuard<()>, PoolConnection<Sqlite>)) {
    let _ = conn.detach().close().await;
    drop(turn);
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqlitePoolOptions;

    /// The next writer waiting for the turn runs as soon as the turn is handed on, before the
    /// task that held it goes on with its rows: otherwise SQLite's single writer idles while
    /// that task decodes them (issue #19).
    #[tokio::test]
    async fn done_lets_the_waiting_writer_go_first() {
        let pool = SqlitePoolOptions::new().max_connections(3).connect("sqlite::memory:").await.expect("pool");
        let writer = Writer::new(WriteTurn::default());
        // A claim arms the keeping, so the second write takes the kept connection at once, as
        // the worker's writes do, instead of waiting on the pool.
        let first = writer.lend(&pool, true).await.expect("first write");
        let went = Arc::new(AtomicBool::new(false));
        let next = tokio::spawn({
            let (writer, pool, went) = (writer.clone(), pool.clone(), went.clone());
            async move {
                let write = writer.lend(&pool, false).await.expect("second write");
                went.store(true, Ordering::SeqCst);
                write.done().await;
            }
        });
        // The test's runtime has one thread: this lets the spawned write start and queue up
        // behind the turn the first one holds.
        tokio::task::yield_now().await;
        assert!(!went.load(Ordering::SeqCst), "the second write cannot start while the first holds the turn");
        first.done().await;
        assert!(went.load(Ordering::SeqCst), "the waiting write should have taken the turn before done() returned");
        next.await.expect("second write task");
    }

    /// A pool of 3 on a WAL file in `dir` with a table `t (n)`, and the file's options.
    async fn wal_pool(
        dir: &tempfile::TempDir,
        busy: std::time::Duration,
    ) -> (SqlitePool, sqlx::sqlite::SqliteConnectOptions) {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("t.db"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(busy);
        let pool = SqlitePoolOptions::new().max_connections(3).connect_with(options.clone()).await.expect("pool");
        sqlx::query("CREATE TABLE t (n)").execute(&pool).await.expect("table");
        (pool, options)
    }

    /// A write in turn that inserts a row into `t`, then fails.
    async fn insert_then_fail(writer: &Writer, pool: &SqlitePool) {
        let failed: Result<(), sqlx::Error> = writer
            .transaction(pool, async |tx| {
                sqlx::query("INSERT INTO t VALUES (1)").execute(&mut *tx).await?;
                Err(sqlx::Error::Protocol("halfway".into()))
            })
            .await;
        assert!(failed.is_err());
    }

    /// A body that fails halfway leaves nothing written, and the next write (on the kept
    /// connection, were it still inside that transaction, its `BEGIN` would fail) goes through.
    #[tokio::test]
    async fn a_failed_transaction_writes_nothing() {
        // A file: every connection of an in-memory pool would see a database of its own.
        let dir = tempfile::tempdir().expect("a temporary directory");
        let options =
            sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("t.db")).create_if_missing(true);
        let pool = SqlitePoolOptions::new().max_connections(3).connect_with(options).await.expect("pool");
        sqlx::query("CREATE TABLE t (n INTEGER)").execute(&pool).await.expect("table");
        let writer = Writer::new(WriteTurn::default());
        // Armed, as under a running worker: the connection would be kept if the write completed.
        writer.lend(&pool, true).await.expect("claim").done().await;
        insert_then_fail(&writer, &pool).await;
        let n: i64 = writer
            .transaction(&pool, async |tx| {
                sqlx::query("INSERT INTO t VALUES (2)").execute(&mut *tx).await?;
                sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(&mut *tx).await
            })
            .await
            .expect("the next write");
        assert_eq!(n, 1, "only the second write's row");
    }

    /// A failed transaction is rolled back before the turn is handed on: a dropped one only
    /// queues its `ROLLBACK`, and the next writer, on another connection that never waits for
    /// the lock (busy timeout 0, as a write in turn never needs to), would meet the lock held.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_transaction_frees_the_lock_before_the_turn() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (pool, options) = wal_pool(&dir, std::time::Duration::ZERO).await;
        let mut other = SqliteConnection::connect_with(&options).await.expect("another connection");
        let writer = Writer::new(WriteTurn::default());
        for i in 0..200 {
            insert_then_fail(&writer, &pool).await;
            let next = other.begin_with(BEGIN).await;
            assert!(next.is_ok(), "round {i}: the next writer met the lock: {:?}", next.err());
            next.expect("checked").rollback().await.expect("rollback");
        }
    }

    /// After a full disk (or an I/O error) at a write, SQLite has rolled the transaction back
    /// on its own, so the queued `ROLLBACK` fails and sqlx goes on counting a transaction
    /// open: kept for the next write, the connection refused every later `BEGIN` ("non-zero
    /// transaction depth"), so the worker's retries, failures and rescues could not be written
    /// until it stopped. A connection whose write failed is closed instead.
    #[tokio::test]
    async fn a_write_that_meets_a_full_disk_leaves_the_next_writes_working() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (pool, _) = wal_pool(&dir, std::time::Duration::from_secs(5)).await;
        let writer = Writer::new(WriteTurn::default());
        // Armed, as under a running worker; the kept connection's file is capped (a
        // per-connection pragma), as a full disk would cap it.
        writer.lend(&pool, true).await.expect("claim").done().await;
        writer.lone(&pool, sqlx::query("PRAGMA max_page_count = 3")).await.expect("cap");
        let full: Result<(), sqlx::Error> = writer
            .transaction(&pool, async |tx| {
                sqlx::query("INSERT INTO t VALUES (zeroblob(100000))").execute(&mut *tx).await?;
                Ok(())
            })
            .await;
        assert!(full.is_err(), "the capped write fails");
        for i in 0..3 {
            writer
                .transaction(&pool, async |tx| sqlx::query("INSERT INTO t VALUES (1)").execute(&mut *tx).await)
                .await
                .unwrap_or_else(|e| panic!("write {i} after the full disk: {e}"));
        }
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(&pool).await.expect("count");
        assert_eq!(n, 3, "the three later writes, nothing of the failed one");
    }

    /// A write whose future is dropped midway (a caller's timeout) handed the turn on at once,
    /// while its statement still ran and its `ROLLBACK` was only queued: the next writer in
    /// turn met SQLite's lock (busy timeout 0 here, as a write in turn never needs to wait).
    /// The turn now passes once the dropped write's connection has closed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_dropped_midway_hands_the_turn_on_with_the_lock_free() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (pool, _) = wal_pool(&dir, std::time::Duration::ZERO).await;
        let writer = Writer::new(WriteTurn::default());
        let long = writer.transaction(&pool, async |tx| {
            sqlx::query(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) \
                 INSERT INTO t SELECT x FROM c",
            )
            .execute(&mut *tx)
            .await
        });
        let dropped = tokio::time::timeout(std::time::Duration::from_millis(20), long).await.is_err();
        assert!(dropped, "the long write is still running when its caller gives up");
        let n: i64 = writer
            .transaction(&pool, async |tx| {
                sqlx::query("INSERT INTO t VALUES (1)").execute(&mut *tx).await?;
                sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(&mut *tx).await
            })
            .await
            .expect("the next write in turn finds the lock free");
        assert_eq!(n, 1, "nothing of the dropped write");
    }
}
