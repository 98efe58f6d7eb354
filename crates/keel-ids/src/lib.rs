//! Identifiers parsed at the edge and trusted everywhere after: `OrgId`, `UserId`, `Email`, `RequestId`.
//!
//! Each type can only be built by parsing, so a value in hand is already valid. Tenancy-scoped
//! APIs (cache, queue) take an `OrgId`, which makes a call without a tenant impossible to write.

mod email;
mod id;
mod request_id;

pub use email::{mask_email, Email};
pub use id::{OrgId, UserId};
pub use request_id::RequestId;

/// Why a value could not be parsed; the message names what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{what} must be a UUID like 0190f6a4-6c2e-7d4b-9a51-3c6f0e2b9a10, got {got:?}")]
    Uuid { what: &'static str, got: String },
    #[error("email address {0}")]
    Email(&'static str),
    #[error("request id must be 1 to 128 characters of A-Z a-z 0-9 - _ . : /")]
    RequestId,
}

#[cfg(test)]
mod tests;
