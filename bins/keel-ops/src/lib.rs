//! keel-ops as a library: the command tree and its handlers, so tests can run commands
//! in-process as well as through the real binary.

mod cli;
mod cmd;
mod output;
mod progress;
mod table;

pub use cli::Cli;
pub use cmd::migrate::SCHEMAS;
pub use cmd::tenancy::SIGN_IN_FAILURES_POLICY;

use keel_config::Source;
use std::process::ExitCode;

/// Exit statuses, documented in `--help`.
pub mod exit {
    pub const OK: u8 = 0;
    /// The command ran and found a problem (a failed check, an audit over `--fail-on`).
    pub const FAILED: u8 = 1;
    /// The configuration or the command line is wrong; nothing was done.
    pub const USAGE: u8 = 2;
    /// A dependency (the database) is unreachable or lacks a capability.
    pub const UNAVAILABLE: u8 = 3;
}

pub async fn run(cli: Cli, source: &dyn Source) -> ExitCode {
    ExitCode::from(run_code(cli, source).await)
}

/// [`run`] with the numeric exit status, for callers that start commands in-process.
pub async fn run_code(cli: Cli, source: &dyn Source) -> u8 {
    match cmd::dispatch(cli, source).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("keel-ops: {e:#}");
            e.exit_code()
        }
    }
}
