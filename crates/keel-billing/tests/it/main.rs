//! Integration tests: the billing store conformance suite, every case on SQLite and Postgres.

/// The components every test database of this binary has installed (billing references
/// tenancy's orgs).
const SCHEMAS: &[&keel_storage::Schema] = &[&keel_tenancy::SCHEMA, &keel_billing::SCHEMA];

mod bounds;
mod create;
mod idempotency;
mod payments;
mod reports;
mod rows;
mod support;
