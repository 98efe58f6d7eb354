//! The operator console: server-rendered HTML under `/console` for platform operators (not
//! tenant users), on the same session cookie as `/api/auth/sign-in`.
//!
//! Layers, outermost first: the security headers on every console answer ([`headers`]); then
//! for pages (not assets) the console's rate limit, keyed by user, the time budget
//! (`KEEL_REQUEST_TIMEOUT`) and the root session middleware. Each page then passes the
//! [`gate::Operator`] gate (signed out: 303 to the sign-in page; signed in without the operator
//! grant: 403), and every POST also passes [`csrf::refusal`] (a per-session token and the `Origin`).
//! Embedded assets skip the limit and the budget: they touch no database and a few open tabs
//! must never spend the pages' allowance on stylesheets.
//!
//! HTML comes from maud templates: checked at compile time, escaped by default (data can reach
//! the page unescaped only through `PreEscaped`, which no template uses on data), and nothing
//! to ship beside the binary.

mod assets;
mod chart;
mod csrf;
mod gate;
mod headers;
mod layout;
mod pages;

use crate::AppState;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;

/// The console's routes, merged into the main router (one `.merge` in `routes::router`).
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    use pages::*;
    let pages = Router::new()
        .route("/console", get(overview::page))
        .route("/console/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/console/sign-out", post(sign_in::sign_out))
        .route("/console/jobs", get(jobs::list))
        .route("/console/jobs/requeue-dead", post(jobs::requeue_dead))
        .route("/console/jobs/{id}", get(jobs::detail))
        .route("/console/jobs/{id}/retry", post(jobs::retry))
        .route("/console/jobs/{id}/cancel", post(jobs::cancel))
        .route("/console/jobs/{id}/requeue", post(jobs::requeue))
        .route("/console/queues", get(queues::page))
        .route("/console/queues/pause", post(queues::pause_queue_form))
        .route("/console/queues/{name}/pause", post(queues::pause_queue))
        .route("/console/queues/{name}/resume", post(queues::resume_queue))
        .route("/console/tasks/{name}/pause", post(queues::pause_task))
        .route("/console/tasks/{name}/resume", post(queues::resume_task))
        .route("/console/limits", get(limits::page))
        .route("/console/telemetry", get(telemetry::page))
        .route("/console/orgs", get(orgs::page))
        .route("/console/operators/grant", post(orgs::grant))
        .route("/console/operators/revoke", post(orgs::revoke))
        .route("/console/activity", get(activity::page))
        .layer(from_fn_with_state(state.clone(), crate::auth::session_middleware))
        .layer(from_fn_with_state(state.clone(), crate::middleware::time_budget))
        .layer(crate::routes::user_floor(state, state.limits.operator_console.clone()));
    let assets = Router::new().route("/console/assets/{file}", get(assets::serve));
    headers::secure(pages.merge(assets))
}
