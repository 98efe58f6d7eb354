//! Output helpers: JSON for scripts, plain tables for people, errors with an exit status.

use crate::exit;

/// A command failure carrying its exit status and a one-paragraph message.
#[derive(Debug)]
pub(crate) struct OpsError {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl OpsError {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self { code: exit::USAGE, message: message.into() }
    }
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self { code: exit::UNAVAILABLE, message: message.into() }
    }
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self { code: exit::FAILED, message: message.into() }
    }
    pub(crate) fn exit_code(&self) -> u8 {
        self.code
    }
}

impl std::fmt::Display for OpsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<keel_storage::StorageError> for OpsError {
    fn from(e: keel_storage::StorageError) -> Self {
        if e.is_unavailable() {
            Self::unavailable(e.to_string())
        } else {
            Self::failed(e.to_string())
        }
    }
}

pub(crate) fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
