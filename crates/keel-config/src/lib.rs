//! Typed configuration read from the environment, validated in one pass.
//!
//! Loading never stops at the first problem: a [`Reader`] collects every missing, malformed or
//! out-of-range variable and [`Problems`] reports them together, each naming the variable and
//! the fix. Secret values never appear in a problem message or in `Debug` output.

mod database;
mod reader;
mod secret;
mod settings;

pub use database::{redact_url, with_database, DatabaseTarget, DEFAULT_SQLITE_PATH};
pub use reader::{parse_duration, EnvSource, MapSource, Problem, Problems, Reader, Source};
pub use secret::Secret;
pub use settings::{Environment, LogFormat, Settings, MIN_INTERNAL_SECRET_LEN};

#[cfg(test)]
mod tests;
