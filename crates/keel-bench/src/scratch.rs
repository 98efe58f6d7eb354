//! Throwaway databases for the families that measure storage: a fresh, migrated PostgreSQL
//! database (created from `TEST_DATABASE_URL`, dropped afterwards) or a SQLite file in a
//! temporary directory (removed on drop).
#![allow(dead_code)] // each family uses a different subset

use keel_config::{with_database, DatabaseTarget, Secret};
use keel_storage::{connect, migrate_all, ConnectMode, Db, Schema};
use sqlx::{self, Connection};
use std::path::PathBuf;

/// `url` with `sslmode=disable` added unless it names an `sslmode`: every system of a run then
/// reaches the server the same way. Left to their defaults they do not: sqlx prefers TLS when
/// the server offers it, node-postgres (graphile-worker, pg-boss) never uses it unless told.
/// On this machine's loopback TLS cost Keel about 0.1 ms per round trip (issue #19: 0.53 of
/// graphile-worker's idle enqueue-to-start over TLS, 0.48 with both in plaintext).
pub(crate) fn one_transport(url: &str) -> String {
    if url.contains("sslmode=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}sslmode=disable")
}

/// A PostgreSQL database made for one bench run. Call [`ScratchPg::drop_db`] at the end.
pub(crate) struct ScratchPg {
    pub admin: String,
    pub name: String,
    pub db: Db,
}

fn stamp() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos()
}

impl ScratchPg {
    /// Creates `keel_bench_<family>_<pid>_<stamp>` and installs `schemas` in it.
    pub(crate) async fn create(family: &str, schemas: &[&Schema]) -> Result<ScratchPg, String> {
        let admin = std::env::var("TEST_DATABASE_URL")
            .map_err(|_| "TEST_DATABASE_URL is unset (cargo xtask bench sets it to the local server)".to_string())?;
        let admin = one_transport(&admin);
        let name = format!("keel_bench_{family}_{}_{}", std::process::id(), stamp());
        let mut conn = sqlx::PgConnection::connect(&admin).await.map_err(|e| format!("connect: {e}"))?;
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.map_err(|e| e.to_string())?;
        let _ = conn.close().await;
        let db = connect(&Self::target_of(&admin, &name), ConnectMode::Eager).await.map_err(|e| e.to_string())?;
        migrate_all(&db, schemas).await.map_err(|e| e.to_string())?;
        Ok(ScratchPg { admin, name, db })
    }

    fn target_of(admin: &str, name: &str) -> DatabaseTarget {
        DatabaseTarget::Postgres { url: Secret::new(with_database(admin, name)) }
    }

    /// The connection URL of this database, for another pool or a server's `DATABASE_URL`.
    pub(crate) fn url(&self) -> String {
        with_database(&self.admin, &self.name)
    }

    pub(crate) async fn drop_db(self) {
        self.db.close().await;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            let _ =
                sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&mut conn).await;
            let _ = conn.close().await;
        }
    }
}

/// A migrated SQLite file in its own temporary directory, removed on drop.
pub(crate) struct ScratchSqlite {
    pub db: Db,
    pub dir: PathBuf,
}

impl ScratchSqlite {
    pub(crate) async fn create(family: &str, schemas: &[&Schema]) -> Result<ScratchSqlite, String> {
        let dir = std::env::temp_dir().join(format!("keel-bench-{family}-{}-{}", std::process::id(), stamp()));
        let target = DatabaseTarget::Sqlite { path: dir.join("keel.db") };
        let db = connect(&target, ConnectMode::Eager).await.map_err(|e| e.to_string())?;
        migrate_all(&db, schemas).await.map_err(|e| e.to_string())?;
        Ok(ScratchSqlite { db, dir })
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join("keel.db")
    }
}

impl Drop for ScratchSqlite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
