//! The metrics listener's router (`KEEL_METRICS_BIND`): `/metrics` in the Prometheus text
//! format (OpenMetrics on request) and nothing else. It is off the public port because it
//! publishes queue counts that `/api/health` shows only to internal callers (and their
//! snapshot, shared per interval, is still a database query).

use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use keel_worker::metrics::ScrapePacer;
use std::sync::Arc;

pub(crate) fn metrics_router(state: AppState) -> Router {
    // One pacer per listener: this router is built once for it.
    let pacer = Arc::new(ScrapePacer::default());
    Router::new()
        .route(
            "/metrics",
            get(move |state: State<AppState>, headers: HeaderMap| {
                let pacer = pacer.clone();
                async move { metrics(state, &pacer, headers).await }
            }),
        )
        .fallback(|| async { ApiError::not_found("this listener serves /metrics only") })
        // axum's own 405 (POST /metrics) is bodiless; every error here is problem+json too.
        .layer(axum::middleware::from_fn(crate::middleware::problem_bodies))
        .with_state(state)
}

/// `GET /metrics`: the Prometheus text format, or OpenMetrics when `Accept` asks for it. The
/// queue gauges come from the shared snapshot (one bounded query per interval for every
/// scraper and health probe together); if it fails they keep their previous values.
/// Scrapes are paced per listener ([`ScrapePacer`]): a storm of scrapers waits its turn rather
/// than taking the CPU the API needs.
pub(crate) async fn metrics(State(state): State<AppState>, pacer: &ScrapePacer, headers: HeaderMap) -> Response {
    keel_worker::metrics::scrape(&state.metrics, &state.queue_snapshot, pacer, &headers).await
}
