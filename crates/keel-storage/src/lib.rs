//! Database pools, the choice of backend, and the per-component migration runner.
#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod connect;
mod db;
mod error;
mod release;
mod schema;

pub use connect::{
    connect, connect_limited, open, open_limited, postgres_pool_options, sqlite_connect_options, sqlite_pool_options,
    ConnectMode, SessionLimits, ACQUIRE_TIMEOUT, PG_MAX_CONNECTIONS, PING_AFTER_IDLE, SQLITE_BUSY_TIMEOUT,
    SQLITE_MAX_CONNECTIONS, SQLITE_MAX_CONNECTIONS_CAP, SQLITE_ROW_BUFFER,
};
pub use db::{Backend, Capabilities, Db};
pub use error::StorageError;
pub use schema::{migrate_all, Legacy, Migration, MigrationInfo, MigrationReport, Schema};

/// sqlx is re-exported so every crate uses the one version the storage layer was built with.
#[doc(hidden)]
pub use sqlx;
