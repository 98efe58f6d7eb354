//! [`BillingError`]: a storage failure, or a stored value this build does not recognise.

use keel_storage::StorageError;

/// What can go wrong reading or writing billing data.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// The database failed (or is unreachable: see [`BillingError::is_unavailable`]).
    #[error(transparent)]
    Storage(#[from] StorageError),

    /// A stored value this build does not recognise (an unknown status, line items that do not
    /// parse, a timestamp out of range). Never replaced by a default: a default would show a
    /// wrong invoice or a wrong total as if it were right.
    #[error("{table} row {id}: {column} holds {found}, which this build does not recognise")]
    BadRow {
        /// The table read.
        table: &'static str,
        /// The row's id (or key).
        id: String,
        /// The column holding the value.
        column: &'static str,
        /// The value, or why it is unusable.
        found: String,
    },
}

impl BillingError {
    /// True when retrying later could succeed (database down, pool exhausted).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Storage(s) if s.is_unavailable())
    }

    pub(crate) fn bad(table: &'static str, id: impl ToString, column: &'static str, found: impl ToString) -> Self {
        Self::BadRow { table, id: id.to_string(), column, found: found.to_string() }
    }
}

impl From<sqlx::Error> for BillingError {
    fn from(e: sqlx::Error) -> Self {
        Self::Storage(StorageError::Query(e))
    }
}
