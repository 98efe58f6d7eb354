//! Storage errors: each message names the setting involved and the fix, never a password.

/// What can go wrong opening, migrating or querying a database.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// `DATABASE_URL` could not be parsed.
    #[error("DATABASE_URL is not a valid connection string ({0}); use postgres://user@host:5432/dbname")]
    InvalidUrl(String),

    /// The SQLite file or its directory cannot be created.
    #[error("cannot create the SQLite database at {path}: {cause}. Fix: make the directory writable, or set DATABASE_URL=sqlite://<a writable path>")]
    DataDir {
        /// The database file.
        path: String,
        /// The operating system's or SQLite's error.
        cause: String,
    },

    /// The server did not answer.
    #[error("cannot reach the database ({target}): {cause}. Fix: check DATABASE_URL and that the server is running, or start with KEEL_AUTO_MIGRATE=false to boot degraded")]
    Unreachable {
        /// The target, password hidden.
        target: String,
        /// The driver's error, password hidden.
        cause: String,
    },

    /// A migration failed; the component stays at its last good version.
    #[error("migration {version} ({description}) failed: {cause}. The component stays at version {current}; fix the cause and migrate again")]
    Migration {
        /// The failed migration's version (0 for the adoption of 0.1 tables).
        version: i64,
        /// `component: name` of the failed migration.
        description: String,
        /// The database's error.
        cause: String,
        /// The component's version after the failure.
        current: i64,
    },

    /// The database is ahead of this build.
    #[error("the database has {component} migration {version} applied, which this build does not know: it was migrated by a newer release. Run the newer build or restore a backup")]
    UnknownMigration {
        /// The component whose tracking table holds the unknown version.
        component: &'static str,
        /// The unknown version.
        version: i64,
    },

    /// A Keel 0.1 database whose single migration set was only partly applied.
    #[error("this database was made by Keel 0.1 but its migrations {missing:?} are missing from _sqlx_migrations: start the 0.1 release once so it finishes migrating, then this one")]
    PartialLegacy {
        /// The 0.1 migrations (`version (name)`) that are missing.
        missing: Vec<String>,
    },

    /// Any other database error.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

impl StorageError {
    /// True when retrying later could succeed (server down, pool exhausted, the disk full or
    /// failing, the database busy), as opposed to a broken query or schema.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Query(e) => {
                matches!(
                    e,
                    sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_)
                ) || is_write_refused(e)
                    || is_busy(e)
            }
            _ => false,
        }
    }

    /// True when the database could not store a write for lack of space or a failing disk:
    /// SQLite's SQLITE_FULL and SQLITE_IOERR, PostgreSQL's `disk_full` (53100) and `io_error`
    /// (58030). The write was not stored (the statement, or its whole transaction, was rolled
    /// back); it can succeed once space returns.
    pub fn is_storage_full(&self) -> bool {
        matches!(self, Self::Query(e) if is_write_refused(e))
    }
}

/// SQLite primary result codes (the low byte of an extended code, e.g. SQLITE_IOERR_WRITE).
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_IOERR: i64 = 10;
const SQLITE_FULL: i64 = 13;
/// PostgreSQL SQLSTATEs for a write the server could not store.
const PG_DISK_FULL: &str = "53100";
const PG_IO_ERROR: &str = "58030";

fn is_write_refused(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => match d.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
            Some(_) => matches!(sqlite_primary(d.code().as_deref()), Some(SQLITE_FULL | SQLITE_IOERR)),
            None => matches!(d.code().as_deref(), Some(PG_DISK_FULL | PG_IO_ERROR)),
        },
        _ => false,
    }
}

/// SQLite's lock stayed taken past the busy timeout (another writer, another process): the
/// write was not done and can be retried.
fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() => {
            matches!(sqlite_primary(d.code().as_deref()), Some(SQLITE_BUSY | SQLITE_LOCKED))
        }
        _ => false,
    }
}

fn sqlite_primary(code: Option<&str>) -> Option<i64> {
    code.and_then(|c| c.parse::<i64>().ok()).map(|c| c & 0xff)
}
