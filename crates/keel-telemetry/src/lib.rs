//! Telemetry shared by every Keel binary: logging setup and redaction (route timing, metrics
//! and the production report join it in the telemetry issue).
//!
//! **Architecture Invariant:** every log line that could carry a recipient goes through
//! [`redact`]; email addresses appear as `j***@example.com`.

mod logging;
mod redact;

pub use logging::{init_logging, LoggingError};
pub use redact::redact;
