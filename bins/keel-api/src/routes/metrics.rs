//! The metrics listener's router (`KEEL_METRICS_BIND`): `/metrics` in the Prometheus text
//! format and nothing else. It is off the public port because a scrape costs a database query
//! and publishes queue counts that `/api/health` shows only to internal callers.

use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub(crate) fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::not_found("this listener serves /metrics only") })
        // axum's own 405 (POST /metrics) is bodiless; every error here is problem+json too.
        .layer(axum::middleware::from_fn(crate::middleware::problem_bodies))
        .with_state(state)
}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    // Queue gauges come from one bounded snapshot query; if it is slow the other families
    // still answer, with the previous gauge values.
    if let Some(g) = &state.queue_gauges {
        if let Ok(Ok(s)) = tokio::time::timeout(std::time::Duration::from_secs(1), state.queue.snapshot()).await {
            let samples = keel_queue::JobState::ALL
                .iter()
                .map(|st| keel_telemetry::metrics::Sample::new([st.as_str()], s.counts.get(*st) as f64))
                .collect();
            let _ = g.replace(samples);
        }
    }
    let mut res = state.metrics.render().into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(keel_telemetry::METRICS_CONTENT_TYPE));
    res
}
