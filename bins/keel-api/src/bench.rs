//! Benchmark support (not a stable API): the invoice list handler's work mounted on a bare
//! axum router, with no middleware and the caller already known, so `cargo xtask bench api`
//! can compare it with the same route through the full stack in one run.

use crate::{AppState, Principal};
use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::Router;

/// `GET /api/admin/invoices` answered for `principal` with nothing in front of the handler:
/// no request id, header stripping, CORS, rate limit, session, authentication or telemetry.
pub fn bare_invoice_list(state: AppState, principal: Principal) -> Router {
    Router::new()
        .route(
            "/api/admin/invoices",
            get(move |State(state): State<AppState>, RawQuery(raw): RawQuery| {
                let principal = principal.clone();
                async move { crate::routes::invoice_list_for(&state, &principal, raw.as_deref()).await }
            }),
        )
        .with_state(state)
}
