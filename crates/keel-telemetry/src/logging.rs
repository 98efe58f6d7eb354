//! One subscriber setup for the binaries: JSON in production, pretty in development.

use keel_config::LogFormat;
use tracing_subscriber::{fmt, EnvFilter};

/// Why [`init_logging`] could not install the subscriber.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The filter text (`RUST_LOG`) does not parse.
    #[error("RUST_LOG is not a valid filter ({0}); use e.g. RUST_LOG=info or RUST_LOG=keel_api=debug,info")]
    Filter(String),
    /// A global subscriber was installed before (by this call or another crate).
    #[error("logging was already initialised")]
    AlreadyInitialised,
}

/// Installs the global subscriber. Logs go to stderr so stdout stays free for command output
/// (`keel-ops … --json` pipes cleanly).
pub fn init_logging(format: LogFormat, filter: &str) -> Result<(), LoggingError> {
    let filter = EnvFilter::try_new(filter).map_err(|e| LoggingError::Filter(e.to_string()))?;
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(true);
    let res = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Pretty => {
            builder.compact().with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init()
        }
    };
    res.map_err(|_| LoggingError::AlreadyInitialised)
}
