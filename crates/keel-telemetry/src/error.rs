//! The crate's storage-facing error: which operation failed and why.

/// A database operation of this crate failed. Messages name the operation; SQL and connection
/// strings never appear in them.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The database refused or failed a statement.
    #[error("telemetry {operation} failed: {source}")]
    Database {
        /// What was being done (`insert of route samples`, `route percentile query`, …).
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A PostgreSQL-only view (server statistics) was asked of SQLite.
    #[error("{what} is only available on PostgreSQL (this database is SQLite)")]
    PostgresOnly {
        /// The view asked for.
        what: &'static str,
    },
    /// The database answered with a value this crate does not recognise.
    #[error("telemetry {operation} returned an unexpected value: {detail}")]
    Unexpected {
        /// What was being done.
        operation: &'static str,
        /// The value and why it was refused.
        detail: String,
    },
}

impl TelemetryError {
    pub(crate) fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> TelemetryError {
        move |source| TelemetryError::Database { operation, source }
    }
}
