//! Typed configuration read from the environment, validated in one pass.
//!
//! Loading never stops at the first problem: a [`Reader`] collects every missing, malformed or
//! out-of-range variable and [`Problems`] reports them together, each naming the variable and
//! the fix. Secret values never appear in a problem message or in `Debug` output.

mod database;
mod reader;
mod secret;
mod settings;

pub use database::DatabaseTarget;
pub use reader::{parse_duration, EnvSource, MapSource, Problem, Problems, Reader, Source};
pub use secret::Secret;
pub use settings::{Environment, LogFormat, Settings};

#[cfg(test)]
mod tests;
