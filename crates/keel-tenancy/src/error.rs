//! Tenancy errors: bad input names the field; storage failures pass through.

/// What a tenancy call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    /// Input refused; `field` names what to fix.
    #[error("{field}: {message}")]
    Invalid {
        /// The input at fault (`email`, `password`, `name`, …).
        field: &'static str,
        /// Why, and how to fix it.
        message: String,
    },
    /// The address belongs to another user.
    #[error("a user with that email address already exists")]
    EmailTaken,
    /// No org has that id.
    #[error("org {0} does not exist")]
    UnknownOrg(String),
    /// No user has that id.
    #[error("user {0} does not exist")]
    UnknownUser(String),
    /// Argon2 failed (out of memory, a broken parameter set).
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The database failed or a stored row could not be read.
    #[error(transparent)]
    Storage(#[from] keel_storage::StorageError),
}

impl From<sqlx::Error> for TenancyError {
    fn from(e: sqlx::Error) -> Self {
        Self::Storage(e.into())
    }
}

impl TenancyError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid { field, message: message.into() }
    }
}
