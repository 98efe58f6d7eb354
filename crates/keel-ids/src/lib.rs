//! Parsed identifiers shared by every Keel crate: `OrgId`, `UserId`, `Email`, `RequestId`.
#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod email;
mod id;
mod request_id;

pub use email::{mask_email, Email};
pub use id::{OrgId, UserId};
pub use request_id::RequestId;

/// Why a value could not be parsed; the message names what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// An [`OrgId`] or [`UserId`] that is not a UUID.
    #[error("{what} must be a UUID like 0190f6a4-6c2e-7d4b-9a51-3c6f0e2b9a10, got {got:?}")]
    Uuid {
        /// Which identifier was being parsed (`org id`, `user id`).
        what: &'static str,
        /// The rejected text, cut to 64 characters.
        got: String,
    },
    /// An address [`Email::parse`] refused; the text says which rule it broke.
    #[error("email address {0}")]
    Email(&'static str),
    /// A [`RequestId`] that is empty, too long or has characters outside the allowed set.
    #[error("request id must be 1 to 128 characters of A-Z a-z 0-9 - _ . : /")]
    RequestId,
}

#[cfg(test)]
mod tests;
