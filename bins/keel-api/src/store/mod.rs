//! The API's own tables (invoices, payments, idempotency keys), with SQL for each backend.
//! Tenancy lives in keel-tenancy; queue, cache and telemetry in their crates.

pub(crate) mod invoices;
mod row;
