//! The worker's probes, on its metrics listener with keel-api's paths and body shape:
//! `/api/health/live` (the process answers; touches nothing) and `/api/health` (200 `ok` when
//! the database answers and every claim loop runs, 503 `degraded` otherwise). What an
//! operator paused (a switch, `keel-ops queue pause`, `cron pause`) is reported in the
//! `worker` section and never makes the worker unhealthy: it is doing what it was told.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use keel_health::{check_fn, section_fn, CheckError, DatabaseCheck, HealthConfig, HealthService};
use keel_queue::{Store, Worker};
use keel_storage::Db;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const NO_STORE: [(header::HeaderName, &str); 1] = [(header::CACHE_CONTROL, "no-store")];

/// How long the `worker` section's pause lookups may take before the answer goes without it.
const PAUSES_TIMEOUT: Duration = Duration::from_millis(1500);

/// The checks (`database`, `claim_loops`) and the `worker` section for `worker`.
pub(crate) fn service(config: HealthConfig, db: Db, worker: Arc<Worker>, store: Arc<dyn Store>) -> HealthService {
    let loops = worker.clone();
    let claim_loops = check_fn("claim_loops", move |_budget| {
        let (running, expected) = (loops.claim_loops_running(), loops.settings().queues.len());
        async move {
            if running == expected {
                Ok(())
            } else {
                Err(CheckError::error(format!("{running} of {expected} claim loops running")))
            }
        }
    });
    let section = section_fn("worker", move |_budget| {
        let (worker, store) = (worker.clone(), store.clone());
        async move {
            let queues = store.paused_queues().await.map_err(|e| CheckError::error(e.to_string()))?;
            let tasks = store.cron_pauses().await.map_err(|e| CheckError::error(e.to_string()))?;
            let switches: Vec<String> = worker.switches().current().active().map(str::to_owned).collect();
            Ok(json!({
                "claim_loops": {"running": worker.claim_loops_running(), "expected": worker.settings().queues.len()},
                "switches": switches,
                "paused_queues": queues,
                "paused_tasks": tasks.into_iter().map(|p| p.task).collect::<Vec<_>>(),
            }))
        }
    })
    .timeout(PAUSES_TIMEOUT);
    let database = match &db {
        Db::Postgres(p) => DatabaseCheck::postgres(p.clone()),
        Db::Sqlite(p) => DatabaseCheck::sqlite(p.clone()),
    };
    HealthService::builder(config)
        .check(database)
        .check(claim_loops)
        .section(section)
        .build()
        // The registry only rejects duplicate or reserved names, which are fixed here.
        .unwrap_or_else(|e| unreachable!("health registry is static: {e}"))
}

/// `GET /api/health/live`: the process is up.
pub(crate) async fn live() -> impl IntoResponse {
    (NO_STORE, Json(json!({"status": "ok"})))
}

/// `GET|HEAD /api/health`: 200 `ok` or 503 `degraded`, always `Cache-Control: no-store`. The
/// listener is internal (`KEEL_WORKER_METRICS_BIND`), so the `worker` section is always shown.
pub(crate) async fn health(State(svc): State<HealthService>) -> impl IntoResponse {
    let report = svc.check_with_sections().await;
    let status = StatusCode::from_u16(report.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    (status, NO_STORE, Json(report))
}
