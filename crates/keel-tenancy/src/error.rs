//! Tenancy errors: bad input names the field; storage failures pass through.

#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("a user with that email address already exists")]
    EmailTaken,
    #[error("org {0} does not exist")]
    UnknownOrg(String),
    #[error("user {0} does not exist")]
    UnknownUser(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
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
