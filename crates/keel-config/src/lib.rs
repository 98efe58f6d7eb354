//! Typed configuration read from the environment, validated in one pass.
#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod database;
mod pool;
mod reader;
mod secret;
mod settings;

pub use database::{redact_url, with_database, DatabaseTarget, DEFAULT_SQLITE_PATH};
pub use pool::{PoolSettings, DEFAULT_ACQUIRE_TIMEOUT, MAX_ACQUIRE_TIMEOUT, MAX_DB_CONNECTIONS};
pub use reader::{parse_duration, EnvSource, MapSource, Problem, Problems, Reader, Source};
pub use secret::Secret;
pub use settings::{Environment, LogFormat, Settings, MIN_INTERNAL_SECRET_LEN};

#[cfg(test)]
mod tests;
