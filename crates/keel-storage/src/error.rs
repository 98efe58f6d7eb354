//! Storage errors: each message names the setting involved and the fix, never a password.

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("DATABASE_URL is not a valid connection string ({0}); use postgres://user@host:5432/dbname")]
    InvalidUrl(String),

    #[error("cannot create the SQLite database at {path}: {cause}. Fix: make the directory writable, or set DATABASE_URL=sqlite://<a writable path>")]
    DataDir { path: String, cause: String },

    #[error("cannot reach the database ({target}): {cause}. Fix: check DATABASE_URL and that the server is running, or start with KEEL_AUTO_MIGRATE=false to boot degraded")]
    Unreachable { target: String, cause: String },

    #[error("migration {version} ({description}) failed: {cause}. The database stays at version {current}; fix the cause and run `keel-ops migrate` again")]
    Migration { version: i64, description: String, cause: String, current: i64 },

    #[error("the database has migration {version} applied that this build does not know: it was migrated by a newer Keel. Run the newer build or restore a backup")]
    UnknownMigration { version: i64 },

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
