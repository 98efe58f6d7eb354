//! One module per console page; each renders through [`super::layout`] and reads its data
//! through the operator API's functions (`crate::ops`) or the shared snapshots, never its own
//! queries.

pub(super) mod activity;
pub(super) mod jobs;
pub(super) mod limits;
pub(super) mod orgs;
pub(super) mod overview;
pub(super) mod queues;
pub(super) mod sign_in;
pub(super) mod telemetry;

use axum::http::StatusCode;
use axum::response::Response;

/// A failure to read or change something, as a page (the cause is logged, not shown).
pub(super) fn failed(what: &str, cause: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %cause, "console: {what} failed");
    super::layout::error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Could not load this page",
        &format!("{what} failed; the server log has the cause. This page can be reloaded."),
    )
}
