//! The [`Db`] handle: one enum over the two pools, plus what each backend can do.

use crate::StorageError;
use sqlx::{PgPool, SqlitePool};

/// Which database engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite: one file, one host.
    Sqlite,
    /// A PostgreSQL server, which several processes and hosts can share.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`, as shown in logs, health output and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// What a backend supports. Callers branch on these instead of on the backend's name, and a
/// missing capability is reported, never emulated behind the caller's back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Cross-process wakeups (LISTEN/NOTIFY). SQLite processes cannot notify each other.
    pub listen_notify: bool,
    /// `FOR UPDATE SKIP LOCKED`: concurrent claimers never wait on each other's rows.
    pub skip_locked: bool,
    /// Several processes can safely share the database (SQLite: one host only).
    pub multi_host: bool,
    /// `UNLOGGED` tables for data that may be lost in a crash (rate-limit counters).
    pub unlogged_tables: bool,
    /// `pg_stat_activity`, `pg_stat_statements` and friends.
    pub server_statistics: bool,
}

/// A pool for one backend. Cloning is cheap (pools are reference-counted).
#[derive(Debug, Clone)]
pub enum Db {
    /// A PostgreSQL pool.
    Postgres(PgPool),
    /// A SQLite pool.
    Sqlite(SqlitePool),
}

impl Db {
    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// What this backend can do; branch on these rather than on the backend's name.
    pub fn capabilities(&self) -> Capabilities {
        match self {
            Self::Postgres(_) => Capabilities {
                listen_notify: true,
                skip_locked: true,
                multi_host: true,
                unlogged_tables: true,
                server_statistics: true,
            },
            Self::Sqlite(_) => Capabilities {
                listen_notify: false,
                skip_locked: false,
                multi_host: false,
                unlogged_tables: false,
                server_statistics: false,
            },
        }
    }

    /// The PostgreSQL pool, if this is one (for a store's Postgres implementation).
    pub fn pg(&self) -> Option<&PgPool> {
        match self {
            Self::Postgres(p) => Some(p),
            Self::Sqlite(_) => None,
        }
    }

    /// The SQLite pool, if this is one (for a store's SQLite implementation).
    pub fn sqlite(&self) -> Option<&SqlitePool> {
        match self {
            Self::Sqlite(p) => Some(p),
            Self::Postgres(_) => None,
        }
    }

    /// One round trip; used by health checks and at startup.
    pub async fn ping(&self) -> Result<(), StorageError> {
        match self {
            Self::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.map(drop)?,
            Self::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.map(drop)?,
        }
        Ok(())
    }

    /// The server's own version string (`PostgreSQL 15.x …` or `SQLite 3.x`).
    pub async fn server_version(&self) -> Result<String, StorageError> {
        Ok(match self {
            Self::Postgres(p) => sqlx::query_scalar::<_, String>("SHOW server_version").fetch_one(p).await?,
            Self::Sqlite(p) => {
                let v: String = sqlx::query_scalar("SELECT sqlite_version()").fetch_one(p).await?;
                format!("SQLite {v}")
            }
        })
    }

    /// Closes the pool and waits for connections to be returned; idempotent.
    pub async fn close(&self) {
        match self {
            Self::Postgres(p) => p.close().await,
            Self::Sqlite(p) => p.close().await,
        }
    }
}
