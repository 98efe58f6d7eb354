//! The pool's rules: a connection whose transaction state is unknown is closed, never reused;
//! the pool honours `KEEL_DB_*` sizing; a write the database cannot store is "unavailable".

use keel_config::{DatabaseTarget, PoolSettings, Secret};
use keel_storage::{Backend, ConnectMode, Db, SessionLimits};
use keel_testkit::{backend_tests, TestDb};
use sqlx::Connection;
use std::time::Duration;

backend_tests!(
    a_connection_left_inside_a_transaction_is_closed_not_reused,
    a_transaction_dropped_mid_way_leaves_no_connection_in_a_transaction,
    the_pool_honours_its_maximum_and_acquire_timeout
);

fn target_of(t: &TestDb) -> DatabaseTarget {
    match t.db.backend() {
        Backend::Postgres => DatabaseTarget::Postgres { url: Secret::new(t.url.clone()) },
        Backend::Sqlite => DatabaseTarget::Sqlite { path: t.url.trim_start_matches("sqlite://").into() },
    }
}

/// A pool of `max` connections over the test's database.
async fn pool_of(t: &TestDb, max: u32, acquire_timeout: Duration) -> Db {
    let pool = PoolSettings { max_connections: Some(max), min_connections: 0, acquire_timeout };
    keel_storage::connect_limited(&target_of(t), ConnectMode::Eager, SessionLimits { pool, ..Default::default() })
        .await
        .unwrap()
}

/// Holds every connection of a pool of `n`: the pool hands them out only once each release
/// (and its check) has finished, so what follows sees the pool settled, with no polling.
async fn settle(db: &Db, n: usize) {
    match db {
        Db::Postgres(p) => {
            let mut held = Vec::new();
            for _ in 0..n {
                held.push(p.acquire().await.unwrap());
            }
        }
        Db::Sqlite(p) => {
            let mut held = Vec::new();
            for _ in 0..n {
                held.push(p.acquire().await.unwrap());
            }
        }
    }
}

/// Sessions of this test's database sitting inside a transaction (PostgreSQL's own view).
async fn idle_in_transaction(p: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
    )
    .fetch_one(p)
    .await
    .unwrap()
}

/// Two ways a connection goes back to the pool in a state sqlx does not know: the database
/// ended the transaction on its own (what SQLite does on SQLITE_FULL; sqlx's ROLLBACK then
/// fails and its count stays at one, so every later `begin_with` failed with "attempted to
/// call begin_with at non-zero transaction depth" until a restart), and a transaction opened
/// behind sqlx's back (it would hold its locks and lend its uncommitted work to the next
/// caller). Either way the connection is closed and the next caller gets a clean one.
async fn a_connection_left_inside_a_transaction_is_closed_not_reused(t: TestDb) {
    let db = pool_of(&t, 1, Duration::from_secs(30)).await;
    match &db {
        Db::Sqlite(p) => {
            sqlx::raw_sql("CREATE TABLE keel_t (v INTEGER)").execute(p).await.unwrap();
            // The database ends the transaction under sqlx (as SQLite does after SQLITE_FULL).
            let mut tx = p.begin_with("BEGIN IMMEDIATE").await.unwrap();
            sqlx::raw_sql("INSERT INTO keel_t VALUES (1); ROLLBACK").execute(&mut *tx).await.unwrap();
            drop(tx);
            let mut tx = p.begin_with("BEGIN IMMEDIATE").await.expect("a clean connection, not a wedged one");
            sqlx::query("INSERT INTO keel_t VALUES (2)").execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
            // A transaction sqlx never saw, left open.
            let mut conn = p.acquire().await.unwrap();
            sqlx::raw_sql("BEGIN IMMEDIATE; INSERT INTO keel_t VALUES (3)").execute(&mut *conn).await.unwrap();
            drop(conn);
            let mut conn = p.acquire().await.unwrap();
            sqlx::raw_sql("BEGIN").execute(&mut *conn).await.expect("not inside a transaction");
            sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await.unwrap();
            let rows: Vec<i64> = sqlx::query_scalar("SELECT v FROM keel_t").fetch_all(&mut *conn).await.unwrap();
            assert_eq!(rows, [2], "neither the rolled-back nor the abandoned insert is visible");
        }
        Db::Postgres(p) => {
            sqlx::raw_sql("CREATE TABLE keel_t (v bigint)").execute(p).await.unwrap();
            let mut conn = p.acquire().await.unwrap();
            sqlx::raw_sql("BEGIN; INSERT INTO keel_t VALUES (3)").execute(&mut *conn).await.unwrap();
            drop(conn);
            settle(&db, 1).await;
            let rows: Vec<i64> = sqlx::query_scalar("SELECT v FROM keel_t").fetch_all(p).await.unwrap();
            assert!(rows.is_empty(), "the abandoned insert is not visible: {rows:?}");
            assert_eq!(idle_in_transaction(p).await, 0, "the session was closed, not pooled");
            // A failed transaction (every statement refused until it ends), left behind.
            let mut conn = p.acquire().await.unwrap();
            let err = sqlx::raw_sql("BEGIN; SELECT 1/0").execute(&mut *conn).await.unwrap_err();
            assert!(err.as_database_error().is_some(), "{err}");
            drop(conn);
            let mut conn = p.acquire().await.unwrap();
            let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut *conn).await.expect("a usable connection");
            assert_eq!(one, 1);
        }
    }
    db.close().await;
}

/// A caller's future dropped while its transaction is open (a request cut off by its time
/// budget, a panic unwinding): the write is not stored, and afterwards every connection of the
/// pool is usable and none sits inside a transaction.
async fn a_transaction_dropped_mid_way_leaves_no_connection_in_a_transaction(t: TestDb) {
    const POOL: u32 = 3;
    let db = pool_of(&t, POOL, Duration::from_secs(30)).await;
    let create = "CREATE TABLE keel_t (v INTEGER)";
    match &db {
        Db::Postgres(p) => sqlx::raw_sql(create).execute(p).await.map(drop).unwrap(),
        Db::Sqlite(p) => sqlx::raw_sql(create).execute(p).await.map(drop).unwrap(),
    }
    let (started, wait) = tokio::sync::oneshot::channel();
    let task = {
        let db = db.clone();
        tokio::spawn(async move {
            match &db {
                Db::Postgres(p) => {
                    let mut tx = p.begin().await.unwrap();
                    sqlx::query("INSERT INTO keel_t VALUES (1)").execute(&mut *tx).await.unwrap();
                    let _ = started.send(());
                    std::future::pending::<()>().await;
                    tx.commit().await.unwrap();
                }
                Db::Sqlite(p) => {
                    let mut tx = p.begin_with("BEGIN IMMEDIATE").await.unwrap();
                    sqlx::query("INSERT INTO keel_t VALUES (1)").execute(&mut *tx).await.unwrap();
                    let _ = started.send(());
                    std::future::pending::<()>().await;
                    tx.commit().await.unwrap();
                }
            }
        })
    };
    wait.await.unwrap();
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    settle(&db, POOL as usize).await;
    match &db {
        Db::Postgres(p) => {
            assert_eq!(idle_in_transaction(p).await, 0);
            let mut held = Vec::new();
            for _ in 0..POOL {
                let mut c = p.acquire().await.unwrap();
                let mut tx = c.begin().await.expect("every connection can begin");
                sqlx::query("INSERT INTO keel_t VALUES (2)").execute(&mut *tx).await.unwrap();
                tx.commit().await.unwrap();
                held.push(c);
            }
            drop(held);
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM keel_t WHERE v = 1").fetch_one(p).await.unwrap();
            assert_eq!(n, 0, "the dropped transaction stored nothing");
        }
        Db::Sqlite(p) => {
            let mut held = Vec::new();
            for _ in 0..POOL {
                let mut c = p.acquire().await.unwrap();
                let mut tx = c.begin_with("BEGIN IMMEDIATE").await.expect("every connection can begin");
                sqlx::query("INSERT INTO keel_t VALUES (2)").execute(&mut *tx).await.unwrap();
                tx.commit().await.unwrap();
                held.push(c);
            }
            drop(held);
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM keel_t WHERE v = 1").fetch_one(p).await.unwrap();
            assert_eq!(n, 0, "the dropped transaction stored nothing");
        }
    }
    db.close().await;
}

/// `KEEL_DB_MAX_CONNECTIONS` bounds the pool: with every connection held, one more acquire
/// waits `KEEL_DB_ACQUIRE_TIMEOUT` and fails as "unavailable" (a 503, not a hang); a released
/// connection serves the next caller.
async fn the_pool_honours_its_maximum_and_acquire_timeout(t: TestDb) {
    const MAX: u32 = 2;
    let db = pool_of(&t, MAX, Duration::from_millis(200)).await;
    macro_rules! check {
        ($p:expr) => {{
            assert_eq!($p.options().get_max_connections(), MAX);
            let mut held = Vec::new();
            for _ in 0..MAX {
                held.push($p.acquire().await.unwrap());
            }
            let err = $p.acquire().await.unwrap_err();
            assert!(matches!(err, sqlx::Error::PoolTimedOut), "{err}");
            assert!(keel_storage::StorageError::from(err).is_unavailable());
            held.pop();
            $p.acquire().await.expect("a released connection serves the next caller");
        }};
    }
    match &db {
        Db::Postgres(p) => check!(p),
        Db::Sqlite(p) => check!(p),
    }
    db.close().await;
}

/// SQLite has one writer at a time: a larger setting is capped, not honoured.
#[tokio::test]
async fn sqlite_pools_are_capped() {
    let t = TestDb::sqlite(&[]).await;
    let db = pool_of(&t, 200, Duration::from_secs(5)).await;
    let Db::Sqlite(p) = &db else { unreachable!() };
    assert_eq!(p.options().get_max_connections(), keel_storage::SQLITE_MAX_CONNECTIONS_CAP);
    let unset = keel_storage::connect(&target_of(&t), ConnectMode::Eager).await.unwrap();
    let Db::Sqlite(p) = &unset else { unreachable!() };
    assert_eq!(p.options().get_max_connections(), keel_storage::SQLITE_MAX_CONNECTIONS);
}

/// A database out of space refuses the write with SQLITE_FULL, which reads as "storage full"
/// and "unavailable" (503, retry later), not as a broken query.
#[tokio::test]
async fn a_full_sqlite_database_is_storage_full() {
    let t = TestDb::sqlite(&[]).await;
    let path = t.url.trim_start_matches("sqlite://").to_owned();
    let mut conn =
        sqlx::SqliteConnection::connect_with(&keel_storage::sqlite_connect_options(path.as_ref())).await.unwrap();
    sqlx::raw_sql("CREATE TABLE keel_t (v BLOB)").execute(&mut conn).await.unwrap();
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(&mut conn).await.unwrap();
    sqlx::raw_sql(&format!("PRAGMA max_page_count = {pages}")).execute(&mut conn).await.unwrap();
    let err = sqlx::query("INSERT INTO keel_t VALUES (zeroblob(100000))").execute(&mut conn).await.unwrap_err();
    let e = keel_storage::StorageError::from(err);
    assert!(e.is_storage_full(), "{e}");
    assert!(e.is_unavailable(), "{e}");
    let other = sqlx::query("INSERT INTO keel_missing VALUES (1)").execute(&mut conn).await.unwrap_err();
    let other = keel_storage::StorageError::from(other);
    assert!(!other.is_storage_full() && !other.is_unavailable(), "a broken query is neither: {other}");
}

/// A pooled PostgreSQL connection idle past [`keel_storage::PING_AFTER_IDLE`] is pinged before
/// it is lent: one whose server session was cut meanwhile is replaced, and the caller never
/// sees it. (A connection used more recently is lent without the round trip.)
#[tokio::test]
async fn a_long_idle_connection_whose_session_died_is_replaced_before_it_is_lent() {
    let Some(t) = TestDb::postgres_empty("storage::pool::ping_if_idle").await else { return };
    let db = pool_of(&t, 1, Duration::from_secs(5)).await;
    let p = db.pg().unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(p).await.unwrap();
    settle(&db, 1).await;
    let mut admin = sqlx::PgConnection::connect(&t.url).await.unwrap();
    let killed: bool =
        sqlx::query_scalar("SELECT pg_terminate_backend($1)").bind(pid).fetch_one(&mut admin).await.unwrap();
    assert!(killed, "the pool's only session was cut");
    // The idle time is what is under test: nothing else can stand in for it.
    tokio::time::sleep(keel_storage::PING_AFTER_IDLE + Duration::from_millis(200)).await;
    let again: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(p)
        .await
        .expect("the dead connection was replaced before it was lent");
    assert_ne!(again, pid, "a new session");
    let _ = admin.close().await;
}
