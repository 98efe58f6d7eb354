//! keel-api as a library: the router, its state and `serve`, so tests start the same server on
//! port 0 that `main.rs` starts on `KEEL_BIND`.
//!
//! This is the only crate that knows about HTTP for the domain crates: each one stays
//! transport-free and is wired here.

mod config;
mod error;
mod middleware;
mod routes;
mod server;
mod state;

pub use config::Config;
pub use error::{ApiError, FieldError, PROBLEM_BASE};
pub use keel_worker::shutdown;
pub use server::{run, serve, serve_router, DRAIN_DEADLINE};
pub use routes::is_internal_caller;
pub use state::AppState;

/// Exit status for configuration problems (every problem printed together).
pub const EXIT_CONFIG: u8 = 2;
/// Exit status for startup failures after configuration (database unreachable, migration failed, bind failed).
pub const EXIT_STARTUP: u8 = 1;

/// The full router with every route and middleware, for a given state.
pub fn router(state: AppState) -> axum::Router {
    routes::router(state)
}
