//! Keel's own application data, kept out of the reusable crates: invoices (atomic per-org,
//! per-day numbering, idempotent creates), payments, the rows the exact reports sum, and the
//! schema holding them.
//!
//! Everything goes through [`BillingStore`], with a PostgreSQL and a SQLite implementation held
//! to one conformance suite. Stored values this build does not recognise are errors
//! ([`BillingError::BadRow`]), never defaults. Every amount a write accepts is at most
//! [`MAX_AMOUNT_MINOR`], on both backends.
//!
//! keel-api serves it; keel-ops installs its schema and backs it up. It is a library crate only
//! so that both binaries reach it without depending on each other. Its tables reference
//! keel-tenancy's `keel_orgs`, so [`migrate`] runs after `keel_tenancy::migrate`.
#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod error;
mod model;
mod pg;
pub mod report;
mod row;
mod schema;
mod sqlite;
mod store;

pub use error::BillingError;
pub use model::{
    format_number, like_pattern, Created, Idempotency, Invoice, InvoicePage, InvoiceStatus, LineItem, ListFilter,
    NewInvoice, Payment, Render, Rendered, IDEMPOTENCY_WINDOW, MAX_AMOUNT_MINOR,
};
pub use pg::PgBillingStore;
pub use schema::{migrate, SCHEMA};
pub use sqlite::SqliteBillingStore;
pub use store::{open, BillingFuture, BillingStore, IDEMPOTENCY_WAIT};
