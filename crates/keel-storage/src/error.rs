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
    /// True when retrying later could succeed (server down, pool exhausted), as opposed to a
    /// broken query or schema.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Query(e) => matches!(
                e,
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_)
            ),
            _ => false,
        }
    }
}
