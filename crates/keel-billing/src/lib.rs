//! Keel's own application data, kept out of the reusable crates: invoices (atomic per-org,
//! per-day numbering, idempotent creates), payments, and the schema holding them.
//!
//! keel-api serves it; keel-ops installs its schema and backs it up. It is a library crate only
//! so that both binaries reach it without depending on each other. Its tables reference
//! keel-tenancy's `keel_orgs`, so [`migrate`] runs after `keel_tenancy::migrate`.

pub mod invoices;
mod row;
mod schema;

pub use schema::{migrate, SCHEMA};
