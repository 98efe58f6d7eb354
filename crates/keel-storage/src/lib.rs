//! Database pools, the choice of backend, and the per-component migration runner.
//!
//! `DATABASE_URL` unset means embedded SQLite at `./data/keel.db`; `postgres://…` means
//! PostgreSQL. Domain crates receive a [`Db`] and keep their own SQL for each backend, each
//! behind a store trait with one conformance suite. What a backend cannot do is declared in
//! [`Capabilities`], never faked.

mod connect;
mod db;
mod error;
mod schema;

pub use connect::{
    connect, connect_limited, open, open_limited, ConnectMode, SessionLimits, ACQUIRE_TIMEOUT, PG_MAX_CONNECTIONS,
    SQLITE_BUSY_TIMEOUT, SQLITE_MAX_CONNECTIONS,
};
pub use db::{Backend, Capabilities, Db};
pub use error::StorageError;
pub use schema::{migrate_all, Legacy, Migration, MigrationInfo, MigrationReport, Schema};

/// sqlx is re-exported so every crate uses the one version the storage layer was built with.
#[doc(hidden)]
pub use sqlx;
