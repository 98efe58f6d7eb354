//! Health checks that answer fast and true: concurrent, each cut off at its own budget carved
//! from one overall deadline, shared by concurrent callers, and never hanging on a dependency.
//!
//! The HTTP side (status codes, `Cache-Control: no-store`, the internal bearer) lives in the
//! API binary; this crate knows nothing of HTTP. A handler builds one [`HealthService`] at
//! start, then per request calls [`HealthService::check`] (or
//! [`HealthService::check_with_sections`] for a caller holding the internal credential),
//! answers [`HealthReport::http_status`], and serializes the report as the body.
//!
//! ```text
//! {"status":"ok","checked_at":"2026-01-02T03:04:05.678Z","services":{"app":"ok","database":"ok"}}
//! ```

mod check;
mod closure;
mod config;
mod database;
mod flight;
mod report;
mod runner;
mod section;
mod service;
mod state;

pub use check::{Check, CheckError, CheckFuture, CheckOutcome, CheckStatus, Criticality};
pub use closure::{check_fn, section_fn, FnCheck, FnSection};
pub use config::{HealthConfig, DEFAULT_DEADLINE, HEALTH_TIMEOUT_VAR};
pub use database::{DatabaseCheck, DEFAULT_PROBE};
pub use flight::{FlightError, SingleFlight};
pub use report::{HealthReport, OverallStatus, APP_SERVICE};
pub use section::{Section, SectionFuture, SectionOutput};
pub use service::{HealthService, HealthServiceBuilder, RegistryError};
pub use state::{HealthState, StateTracker, Transition};

#[cfg(test)]
mod tests;
