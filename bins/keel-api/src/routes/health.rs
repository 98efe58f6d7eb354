//! Health endpoints: `/api/health/live` touches nothing; `/api/health` checks dependencies under
//! one deadline and, for the internal bearer, adds the queue snapshot.

use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

const NO_STORE: [(header::HeaderName, &str); 1] = [(header::CACHE_CONTROL, "no-store")];

/// `GET /api/health/live`: the process is up. Touches no dependency, so an orchestrator never
/// restarts healthy pods because the database blinked.
pub(crate) async fn live() -> impl IntoResponse {
    (NO_STORE, Json(json!({"status": "ok"})))
}

/// `GET|HEAD /api/health`: 200 `ok` or 503 `degraded`, always `Cache-Control: no-store`.
/// Concurrent probes share one run (see keel-health), so a probe storm is one database query.
pub(crate) async fn health(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let report = if is_internal_caller(&state, &headers) {
        state.health.check_with_sections().await
    } else {
        state.health.check().await
    };
    let status = StatusCode::from_u16(report.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    (status, NO_STORE, Json(report))
}

/// True only for `Authorization: Bearer <INTERNAL_API_SECRET>`, compared in constant time. A
/// malformed header is treated as absent, never as an error.
pub fn is_internal_caller(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(secret) = &state.config.settings.internal_api_secret else { return false };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| secret.matches(token.trim().as_bytes()))
}
