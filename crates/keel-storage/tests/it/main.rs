//! Conformance suite for the storage layer, run against SQLite and PostgreSQL.

use keel_storage::{Backend, Db, Migrations, SessionLimits, StorageError};
use keel_testkit::{backend_tests, TestDb};
use sqlx::migrate::Migrator;

backend_tests!(
    migrations_are_current_and_idempotent,
    ping_and_version,
    failed_migration_keeps_last_good_version,
    session_limits_stop_long_statements_on_the_server
);

async fn migrations_are_current_and_idempotent(t: TestDb) {
    let v = t.db.schema_version().await.unwrap();
    assert!(v >= 1, "foundation migration applied");
    assert!(t.db.pending_migrations(Migrations::Embedded).await.unwrap().is_empty());
    let again = t.db.migrate(Migrations::Embedded).await.unwrap();
    assert!(again.applied.is_empty(), "second run applies nothing");
    assert_eq!(again.current, v);
}

async fn ping_and_version(t: TestDb) {
    t.db.ping().await.unwrap();
    let v = t.db.server_version().await.unwrap();
    match t.db.backend() {
        Backend::Postgres => assert!(v.chars().next().is_some_and(|c| c.is_ascii_digit()), "{v}"),
        Backend::Sqlite => assert!(v.starts_with("SQLite 3."), "{v}"),
    }
    assert_eq!(t.db.capabilities().listen_notify, t.db.backend() == Backend::Postgres);
}

async fn failed_migration_keeps_last_good_version(t: TestDb) {
    // A fresh, unmigrated database of the same backend, with a custom migration set whose
    // second migration fails halfway (its first statement succeeds, its second does not).
    let empty = match t.db.backend() {
        Backend::Sqlite => TestDb::sqlite_empty().await,
        Backend::Postgres => TestDb::postgres_empty("failed_migration_keeps_last_good_version").await.unwrap(),
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("0001_good.sql"), "CREATE TABLE good_one (id INTEGER PRIMARY KEY);").unwrap();
    std::fs::write(
        dir.path().join("0002_bad.sql"),
        "CREATE TABLE half_done (id INTEGER PRIMARY KEY);\nINSERT INTO no_such_table VALUES (1);",
    )
    .unwrap();
    std::fs::write(dir.path().join("0003_after.sql"), "CREATE TABLE never_reached (id INTEGER);").unwrap();
    let m = Migrator::new(dir.path()).await.unwrap();
    let err = empty.db.migrate(Migrations::Custom(&m)).await.unwrap_err();
    match &err {
        StorageError::Migration { version, description, current, .. } => {
            assert_eq!(*version, 2);
            assert_eq!(description, "bad");
            assert_eq!(*current, 1);
        }
        other => panic!("expected a migration error, got {other:?}"),
    }
    assert!(err.to_string().contains("migration 2 (bad) failed"), "{err}");
    assert_eq!(empty.db.schema_version().await.unwrap(), 1);
    // Nothing of the failed migration is left behind.
    let q = match empty.db.backend() {
        Backend::Sqlite => "SELECT count(*) FROM sqlite_master WHERE name = 'half_done'",
        Backend::Postgres => "SELECT count(*) FROM pg_class WHERE relname = 'half_done'",
    };
    let n: i64 = match &empty.db {
        Db::Sqlite(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
    };
    assert_eq!(n, 0, "the failed migration was rolled back as a whole");
}

#[tokio::test]
async fn unwritable_data_dir_names_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let target = keel_config::DatabaseTarget::Sqlite { path: file.join("sub/keel.db") };
    let err = keel_storage::connect(&target, keel_storage::ConnectMode::Eager).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("cannot create the SQLite database") && msg.contains("DATABASE_URL"), "{msg}");
    assert!(!file.join("sub").exists(), "nothing half-created");
}

#[tokio::test]
async fn unreachable_postgres_is_a_clear_error_without_password() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let target = keel_config::DatabaseTarget::parse(Some("postgres://keel:s3cret-pw@127.0.0.1:1/keel")).unwrap();
    let err = keel_storage::connect(&target, keel_storage::ConnectMode::Eager).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("cannot reach the database"), "{msg}");
    assert!(!msg.contains("s3cret-pw"), "{msg}");
    assert!(err.is_unavailable());
    // Lazy mode returns a pool at once; the first query then fails and says so.
    let lazy = keel_storage::connect(&target, keel_storage::ConnectMode::Lazy).await.unwrap();
    assert!(lazy.ping().await.is_err());
}

/// A pool opened with a statement timeout has the server cancel a statement that outlives it
/// (on Postgres); migrations are not subject to it, and SQLite ignores the limit.
async fn session_limits_stop_long_statements_on_the_server(t: TestDb) {
    let target = match t.db.backend() {
        Backend::Postgres => keel_config::DatabaseTarget::Postgres { url: keel_config::Secret::new(t.url.clone()) },
        Backend::Sqlite => keel_config::DatabaseTarget::Sqlite { path: t.url.trim_start_matches("sqlite://").into() },
    };
    let limits = SessionLimits { statement_timeout: Some(std::time::Duration::from_millis(300)) };
    let db = keel_storage::open_limited(&target, true, limits).await.unwrap();
    db.ping().await.unwrap();
    match &db {
        Db::Postgres(p) => {
            let shown: String = sqlx::query_scalar("SHOW statement_timeout").fetch_one(p).await.unwrap();
            assert_eq!(shown, "300ms");
            let err = sqlx::query("SELECT pg_sleep(30)").execute(p).await.unwrap_err();
            let code = err.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned());
            assert_eq!(code.as_deref(), Some("57014"), "query_canceled by statement_timeout: {err}");
            // The pool is still usable afterwards.
            db.ping().await.unwrap();
        }
        Db::Sqlite(_) => assert!(db.pending_migrations(Migrations::Embedded).await.unwrap().is_empty()),
    }
    db.close().await;
}

/// `sslmode=require` opens an encrypted session (managed PostgreSQL services insist on it). The
/// local server has `ssl = on`, as Debian's PostgreSQL does out of the box.
#[tokio::test]
async fn postgres_connects_over_tls_when_the_url_requires_it() {
    let Some(t) = TestDb::postgres("postgres_connects_over_tls_when_the_url_requires_it").await else { return };
    let Db::Postgres(plain) = &t.db else { unreachable!("a Postgres TestDb") };
    let ssl_on: String = sqlx::query_scalar("SHOW ssl").fetch_one(plain).await.unwrap();
    assert_eq!(
        ssl_on, "on",
        "this test needs a server with ssl = on (Debian's default, with its snakeoil certificate)"
    );
    let sep = if t.url.contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}sslmode=require", t.url);
    let target = keel_config::DatabaseTarget::Postgres { url: keel_config::Secret::new(url) };
    let db = keel_storage::connect(&target, keel_storage::ConnectMode::Eager).await.unwrap();
    let Db::Postgres(p) = &db else { unreachable!() };
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetch_one(p).await.unwrap();
    assert!(encrypted, "the session is encrypted");
    db.close().await;
}
