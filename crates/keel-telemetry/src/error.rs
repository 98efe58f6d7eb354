//! The crate's storage-facing error: which operation failed and why.

/// A database operation of this crate failed. Messages name the operation; SQL and connection
/// strings never appear in them.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry {operation} failed: {source}")]
    Database {
        operation: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("{what} is only available on PostgreSQL (this database is SQLite)")]
    PostgresOnly { what: &'static str },
    #[error("telemetry {operation} returned an unexpected value: {detail}")]
    Unexpected { operation: &'static str, detail: String },
}

impl TelemetryError {
    pub(crate) fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> TelemetryError {
        move |source| TelemetryError::Database { operation, source }
    }
}
