//! The route table: every path the server answers, in one place.

mod health;

pub use health::is_internal_caller;

use crate::{ApiError, AppState};
use axum::routing::get;
use axum::Router;

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/health/live", get(health::live))
        .route("/api/health", get(health::health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(crate::middleware::request_log))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no route matches this path")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this route does not accept that method",
    )
}
