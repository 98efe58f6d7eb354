//! Health endpoints: `/api/health/live` touches nothing; `/api/health` checks dependencies under
//! one deadline and, for the internal bearer, adds the queue snapshot.

use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

const NO_STORE: [(header::HeaderName, &str); 1] = [(header::CACHE_CONTROL, "no-store")];

/// `GET /api/health/live`: the process is up. Touches no dependency, so an orchestrator never
/// restarts healthy pods because the database blinked.
#[utoipa::path(
    get,
    path = "/api/health/live",
    tag = "health",
    summary = "Liveness: the process is up; touches no dependency",
    responses((status = 200, description = "Always `{\"status\": \"ok\"}`", body = Live,
        headers(("Cache-Control" = String, description = "no-store"))))
)]
pub(crate) async fn live() -> impl IntoResponse {
    (NO_STORE, Json(Live { status: LiveStatus::Ok }))
}

/// The liveness answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Live {
    status: LiveStatus,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LiveStatus {
    Ok,
}

/// `GET|HEAD /api/health`: 200 `ok` or 503 `degraded`, always `Cache-Control: no-store`
/// (keel-health's axum response). Concurrent probes share one run (see keel-health), so a probe
/// storm is one database query.
#[utoipa::path(
    method(get, head),
    path = "/api/health",
    tag = "health",
    summary = "Health of the service and its dependencies (200 ok, 503 degraded)",
    description = "With `Authorization: Bearer <INTERNAL_API_SECRET>` the report adds the internal `queue` section.",
    responses(
        (status = 200, description = "Every check passed", body = keel_health::HealthReport,
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 503, description = "A dependency is degraded", body = keel_health::HealthReport,
            headers(("Cache-Control" = String, description = "no-store"))),
    )
)]
pub(crate) async fn health(State(state): State<AppState>, headers: HeaderMap) -> keel_health::HealthReport {
    if is_internal_caller(&state, &headers) {
        state.health.check_with_sections().await
    } else {
        state.health.check().await
    }
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

/// How long the internal queue snapshot may take before the endpoint answers without it (the
/// query itself is bounded in the database by `QUEUE_SNAPSHOT_LIMIT`).
const QUEUE_SNAPSHOT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1500);

/// Adds the internal `queue` section (shown only to the internal bearer) and builds the service.
/// It reads the snapshot the metrics scrapes share: a probe storm adds no query either.
pub(crate) fn with_queue_section(
    builder: keel_health::HealthServiceBuilder,
    snapshot: keel_queue::SharedSnapshot,
) -> keel_health::HealthService {
    let section = keel_health::section_fn("queue", move |_budget| {
        let snapshot = snapshot.clone();
        async move {
            let s = snapshot.get().await.map_err(|e| keel_health::CheckError::error(e.to_string()))?;
            Ok(json!({
                "pending": s.counts.get(keel_queue::JobState::Pending),
                "processing": s.counts.get(keel_queue::JobState::Processing),
                "retrying": s.counts.get(keel_queue::JobState::Retrying),
                "dead_letter": s.counts.get(keel_queue::JobState::DeadLetter),
                "oldest_pending_age_s": s.oldest_pending_age_s,
            }))
        }
    })
    .timeout(QUEUE_SNAPSHOT_TIMEOUT);
    builder
        .section(section)
        .build()
        // The registry only rejects duplicate or reserved names, which are fixed here.
        .unwrap_or_else(|e| unreachable!("health registry is static: {e}"))
}
