//! [`TestDb`]: a throwaway database on SQLite or PostgreSQL with the components a test needs.

use keel_config::{with_database, DatabaseTarget, Secret};
use keel_storage::{connect, migrate_all, ConnectMode, Db, Schema};
use sqlx::Connection;
use std::io::Write;

pub struct TestDb {
    pub db: Db,
    /// For Postgres: the admin URL and the database name to drop afterwards.
    pg_cleanup: Option<(String, String)>,
    /// The connection URL of this test's database (Postgres) or file (SQLite), for tests that
    /// start a real process against it.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// The admin URL from `TEST_DATABASE_URL`, or `None` after reporting the skip. Panics under
/// `CI=true`, where a skipped Postgres suite would be a lie.
pub fn postgres_admin_url(test_name: &str) -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ => {
            if std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false) {
                panic!("CI=true but TEST_DATABASE_URL is unset: the Postgres suite must run in CI ({test_name})");
            }
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (postgres): {test_name}: set TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres to run it"
            );
            None
        }
    }
}

impl TestDb {
    /// A fresh SQLite file in a temporary directory with `schemas` installed, in order.
    pub async fn sqlite(schemas: &[&Schema]) -> TestDb {
        let t = Self::sqlite_empty().await;
        migrate_all(&t.db, schemas).await.expect("migrate sqlite");
        t
    }

    /// A fresh Postgres database with `schemas` installed, in order, or `None` when skipped
    /// (see the crate docs).
    pub async fn postgres(test_name: &str, schemas: &[&Schema]) -> Option<TestDb> {
        let t = Self::postgres_empty(test_name).await?;
        migrate_all(&t.db, schemas).await.expect("migrate postgres");
        Some(t)
    }

    /// A fresh Postgres database with no migrations applied.
    pub async fn postgres_empty(test_name: &str) -> Option<TestDb> {
        let admin = postgres_admin_url(test_name)?;
        let name = format!("keel_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect to TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
        let _ = conn.close().await;
        let url = with_database(&admin, &name);
        let db = connect(&DatabaseTarget::Postgres { url: Secret::new(url.clone()) }, ConnectMode::Eager)
            .await
            .expect("connect to test database");
        Some(TestDb { db, pg_cleanup: Some((admin, name)), url, _dir: None })
    }

    /// A fresh SQLite file with no migrations applied.
    pub async fn sqlite_empty() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("keel.db");
        let db = connect(&DatabaseTarget::Sqlite { path: path.clone() }, ConnectMode::Eager).await.expect("sqlite");
        TestDb { db, pg_cleanup: None, url: format!("sqlite://{}", path.display()), _dir: Some(dir) }
    }

    /// The directory holding the SQLite file, for tests that need a place to write.
    pub fn dir(&self) -> Option<&std::path::Path> {
        self._dir.as_ref().map(|d| d.path())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg_cleanup.take() else { return };
        // Drop runs inside the test's runtime, where blocking on async work is not allowed; a
        // short-lived thread with its own runtime drops the database. WITH (FORCE) ends any
        // connection the test left open.
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = handle.join();
    }
}
