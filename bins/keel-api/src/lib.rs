//! keel-api as a library: the router, its state and `serve`, so tests start the same server on
//! port 0 that `main.rs` starts on `KEEL_BIND`.
//!
//! This is the only crate that knows about HTTP for the domain crates: each one stays
//! transport-free and is wired here.

mod auth;
#[doc(hidden)]
pub mod bench;
mod cache;
mod config;
mod console;
mod error;
mod extract;
mod middleware;
mod observe;
mod ops;
mod policies;
pub mod reports;
mod routes;
mod server;
mod state;
mod write_health;

pub use auth::{Attempt, Principal, SignInThrottle};
pub use config::{Config, CorsOrigins, HttpLimits, DEFAULT_BODY_LIMIT, DEFAULT_MAX_CONNECTIONS};
pub use error::{ApiError, FieldError, PROBLEM_BASE, WRITE_REFUSED_RETRY_AFTER_S};
pub use keel_worker::shutdown;
pub use policies::Policies;
pub use routes::{is_internal_caller, ApiDoc};
pub use server::{run, serve, serve_metrics, serve_router, DRAIN_DEADLINE};
pub use state::{AppState, Limits};
pub use write_health::{WriteHealth, REFUSED_WRITE_WINDOW};

/// Every component keel-api reads or writes, in installation order (tenancy first: billing's
/// tables reference its orgs). `keel-ops migrate` installs the same list.
pub static SCHEMAS: &[&keel_storage::Schema] = &[
    &keel_tenancy::SCHEMA,
    &keel_billing::SCHEMA,
    &keel_queue::SCHEMA,
    &keel_ratelimit::SCHEMA,
    &keel_telemetry::SCHEMA,
    &keel_worker::CAMPAIGNS_SCHEMA,
];

/// Every (method, path) the OpenAPI document lists (`("get", "/api/health")`), read from the
/// derived document itself: tests check it against the routes the router serves.
pub fn operations() -> Vec<(String, String)> {
    routes::operations()
}

/// Exit status for configuration problems (every problem printed together).
pub const EXIT_CONFIG: u8 = 2;
/// Exit status for startup failures after configuration (database unreachable, migration failed, bind failed).
pub const EXIT_STARTUP: u8 = 1;

/// The full router with every route and middleware, for a given state.
pub fn router(state: AppState) -> axum::Router {
    routes::router(state)
}
