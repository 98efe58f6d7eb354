//! Health checks that answer fast and true: concurrent, each cut off at its own budget carved
//! from one overall deadline, shared by concurrent callers, and never hanging on a dependency.
//!
#![doc = include_str!("../README.md")]
//!
//! # HTTP
//! The core knows nothing of HTTP. A handler builds one [`HealthService`] at start, then per
//! request calls [`HealthService::check`] (or [`HealthService::check_with_sections`] for a
//! caller holding an internal credential), answers [`HealthReport::http_status`], and
//! serializes the report as the body:
//!
//! ```text
//! {"status":"ok","checked_at":"2026-01-02T03:04:05.678Z","services":{"app":"ok","database":"ok"}}
//! ```
//!
//! With the `axum` feature, `handler` does exactly that, and a [`HealthReport`] is an axum
//! response.

#![deny(missing_docs)]

mod check;
mod closure;
mod config;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod database;
mod flight;
#[cfg(feature = "axum")]
pub mod handler;
#[cfg(feature = "openapi")]
mod openapi;
mod report;
mod runner;
mod section;
mod service;
mod state;

pub use check::{Check, CheckError, CheckFuture, CheckOutcome, CheckStatus, Criticality};
pub use closure::{check_fn, section_fn, FnCheck, FnSection};
pub use config::{HealthConfig, DEFAULT_DEADLINE, HEALTH_TIMEOUT_VAR};
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub use database::{DatabaseCheck, DEFAULT_PROBE};
pub use flight::{FlightError, SingleFlight};
pub use report::{HealthReport, OverallStatus, APP_SERVICE};
pub use section::{Section, SectionFuture, SectionOutput};
pub use service::{HealthService, HealthServiceBuilder, RegistryError};
pub use state::{HealthState, StateTracker, Transition};

#[cfg(test)]
mod tests;
