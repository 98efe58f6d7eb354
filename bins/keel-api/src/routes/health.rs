//! Health endpoints: liveness touches nothing; readiness checks the database.

use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

const NO_STORE: [(header::HeaderName, &str); 1] = [(header::CACHE_CONTROL, "no-store")];

/// `GET /api/health/live`: the process is up. Touches no dependency, so an orchestrator never
/// restarts healthy pods because the database blinked.
pub(crate) async fn live() -> impl IntoResponse {
    (NO_STORE, Json(json!({"status": "ok"})))
}

/// `GET /api/health`: `ok` when the database answers, `degraded` (503) otherwise.
pub(crate) async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let db_ok = tokio::time::timeout(std::time::Duration::from_secs(2), state.db.ping()).await;
    let database = match db_ok {
        Ok(Ok(())) => "ok",
        Ok(Err(_)) => "error",
        Err(_) => "timeout",
    };
    let ok = database == "ok";
    let body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "checked_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "services": {"app": "ok", "database": database},
    });
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, NO_STORE, Json(body))
}
