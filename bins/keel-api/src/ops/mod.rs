//! The operator API (`/api/ops/*`) and what the operator console (`/console`) is built from:
//! [`Operator`], the extractor that admits platform operators only; [`data`], the read models
//! (overview, jobs, schedules, limits, telemetry, orgs, activity) both surfaces render; and
//! [`actions`], the state-changing verbs, each recorded in the activity log.
//!
//! **Invariant:** operators are a platform grant beside the org roles (keel-tenancy's
//! `keel_operators`); an org owner who is not an operator gets 403 here, and nothing here
//! reads billing tables, so an operator gains no org's invoices through it.
//!
//! **Invariant:** every action is written to the activity log (who, what, when, and the
//! connection's peer address: never a forwarding header) before its answer is sent.

pub(crate) mod actions;
pub(crate) mod data;
mod denied;
mod live;
mod operator;
pub(crate) mod routes;
pub(crate) mod trend;

pub(crate) use live::OpsLive;
#[allow(unused_imports)] // the console's forms and tests name the header through here
pub(crate) use operator::CSRF_HEADER;
pub(crate) use operator::{Operator, OperatorVia};
