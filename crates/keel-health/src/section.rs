//! Extra sections: optional report parts (like an internal queue snapshot) with their own timeout.

use crate::check::{CheckError, CheckStatus};
use futures::future::BoxFuture;
use serde_json::{json, Value};
use std::time::Duration;

/// The future a section returns.
pub type SectionFuture<'a> = BoxFuture<'a, Result<Value, CheckError>>;

/// A named part of the report added only when the caller asks for it (e.g. holds the internal
/// bearer). A section never changes the overall status; when it fails or runs out of time its
/// value says so instead of blocking the answer.
pub trait Section: Send + Sync + 'static {
    /// The top-level key in the body, e.g. `queue`.
    fn name(&self) -> &str;

    /// This section's own cap; the run uses the smaller of it and the overall deadline.
    fn timeout(&self) -> Option<Duration> {
        None
    }

    /// Produces the section's value once. `budget` is how long it has before it is cancelled.
    fn collect(&self, budget: Duration) -> SectionFuture<'_>;
}

/// What one section produced in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct SectionOutput {
    /// The section's name (its key in the body).
    pub name: String,
    /// Whether it produced a value in time.
    pub status: CheckStatus,
    /// The section's own value, `{"timed_out": true}` on timeout, or `{"error": "<detail>"}`.
    pub value: Value,
    /// For logs only.
    pub cause: Option<String>,
    /// Time from the section's start to its value (cut off at its budget).
    pub elapsed: Duration,
}

impl SectionOutput {
    pub(crate) fn from_result(name: String, result: Result<Value, CheckError>, elapsed: Duration) -> Self {
        match result {
            Ok(value) => Self { name, status: CheckStatus::Ok, value, cause: None, elapsed },
            Err(e) => {
                let value = match e.status() {
                    CheckStatus::Timeout => timed_out_value(),
                    _ => json!({ "error": e.detail().unwrap_or("unavailable") }),
                };
                Self { name, status: e.status(), value, cause: Some(e.cause().to_owned()), elapsed }
            }
        }
    }
}

pub(crate) fn timed_out_value() -> Value {
    json!({ "timed_out": true })
}
