//! Integration tests: the store conformance suite (every case on SQLite and Postgres), the
//! worker runtime, scheduled tasks and incident switches.

/// The components every test database of this binary has installed.
const SCHEMAS: &[&keel_storage::Schema] = &[&keel_queue::SCHEMA];

mod claims_in_flight;
mod cron_store;
mod history;
mod incidents;
mod observe;
mod schema;
mod sealed;
mod sqlite_claim;
mod sqlite_writer;
mod store_admin;
mod store_core;
mod support;
mod trace_context;
mod worker;
mod worker_faults;
