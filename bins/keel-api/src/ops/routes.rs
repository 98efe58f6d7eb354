//! `/api/ops/*`: the operator API, JSON over the same data and actions as the console. Layers
//! (outermost first, inside the edge stack every route has): the `operator_console` rate limit
//! (keyed by user, else client network, with no database round trip), the time budget, the
//! session middleware; then [`Operator`] in each handler (401 signed out, 403 without the
//! operator grant or scope, 403 for a cookie POST without its CSRF proof or from another
//! origin). Answers are `Cache-Control: no-store`.

use super::{actions, data, Operator, OperatorVia};
use crate::extract::{query_pairs, AppJson};
use crate::{ApiError, AppState};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use keel_ids::OrgId;
use keel_queue::JobId;
use serde::Deserialize;
use serde_json::{json, Value};

/// The operator API's router, merged into the main one by `routes::router`.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/api/ops/me", get(me))
        .route("/api/ops/overview", get(overview))
        .route("/api/ops/queue/stats", get(queue_stats))
        .route("/api/ops/jobs", get(jobs))
        .route("/api/ops/jobs/{id}", get(job))
        .route("/api/ops/jobs/{id}/retry", post(retry))
        .route("/api/ops/jobs/{id}/cancel", post(cancel))
        .route("/api/ops/jobs/{id}/requeue", post(requeue_one))
        .route("/api/ops/dead/requeue", post(requeue_dead))
        .route("/api/ops/queues/{name}/pause", post(queue_pause))
        .route("/api/ops/queues/{name}/resume", post(queue_resume))
        .route("/api/ops/cron", get(cron))
        .route("/api/ops/cron/runs", get(cron_runs))
        .route("/api/ops/cron/{task}/pause", post(task_pause))
        .route("/api/ops/cron/{task}/resume", post(task_resume))
        .route("/api/ops/rate-limits", get(rate_limits))
        .route("/api/ops/telemetry", get(telemetry))
        .route("/api/ops/telemetry/routes", get(route_trend))
        .route("/api/ops/orgs", get(orgs))
        .route("/api/ops/orgs/{id}/members", get(members))
        .route("/api/ops/operators", get(operators))
        .route("/api/ops/operators/grant", post(grant))
        .route("/api/ops/operators/revoke", post(revoke))
        .route("/api/ops/activity", get(activity))
        .layer(from_fn_with_state(state.clone(), crate::auth::session_middleware))
        .layer(from_fn_with_state(state.clone(), crate::middleware::time_budget))
        .layer(crate::routes::user_floor(state, state.limits.operator_console.clone()))
}

const NO_STORE: [(header::HeaderName, &str); 1] = [(header::CACHE_CONTROL, "no-store")];

fn ok(v: Value) -> Response {
    (NO_STORE, Json(v)).into_response()
}

/// A page with a `Link: <…>; rel="next"` header naming the next page, when there is one.
fn page(v: Value, path: &str, pairs: &[(String, String)], next: Option<String>) -> Response {
    let mut res = ok(v);
    if let Some(cursor) = next {
        let mut q: Vec<String> =
            pairs.iter().filter(|(k, _)| k != "before").map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
        q.push(format!("before={cursor}"));
        if let Ok(h) = HeaderValue::from_str(&format!("<{path}?{}>; rel=\"next\"", q.join("&"))) {
            res.headers_mut().insert(header::LINK, h);
        }
    }
    res
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for the `Link` URL.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn job_id(raw: &str) -> Result<JobId, ApiError> {
    raw.parse().map_err(|_| ApiError::bad_param("id", "must be a job id (a UUID)"))
}

/// Who is calling, and for a browser session the CSRF token its POSTs must carry.
async fn me(State(state): State<AppState>, op: Operator) -> Result<Response, ApiError> {
    let user = state.tenancy.user(op.user_id).await.map_err(crate::error::from_tenancy)?;
    let via = match op.via {
        OperatorVia::Session(_) => "session",
        OperatorVia::Token => "token",
    };
    Ok(ok(json!({
        "user_id": op.user_id,
        "email": user.map(|u| u.email.to_string()),
        "via": via,
        "csrf_token": op.csrf_token(&state),
    })))
}

async fn overview(State(state): State<AppState>, _op: Operator) -> Result<Response, ApiError> {
    Ok(ok(data::overview(&state).await?))
}

async fn queue_stats(State(state): State<AppState>, _op: Operator) -> Result<Response, ApiError> {
    Ok(ok(data::queue_stats(&state).await?))
}

async fn jobs(State(state): State<AppState>, _op: Operator, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let pairs = query_pairs(q.as_deref());
    let query = data::JobQuery::parse(&pairs)?;
    let (v, next) = data::jobs(&state, &query).await?;
    Ok(page(v, "/api/ops/jobs", &pairs, next.map(|n| n.to_string())))
}

async fn job(State(state): State<AppState>, _op: Operator, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(data::job(&state, job_id(&id)?).await?))
}

async fn retry(State(state): State<AppState>, op: Operator, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(actions::retry(&state, &op, job_id(&id)?).await?))
}

async fn cancel(State(state): State<AppState>, op: Operator, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(actions::cancel(&state, &op, job_id(&id)?).await?))
}

async fn requeue_one(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(actions::requeue_one(&state, &op, job_id(&id)?).await?))
}

/// `{"kind": "email.send"}` requeues that kind's dead jobs; `{}` every dead job.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequeueIn {
    #[serde(default)]
    kind: Option<String>,
}

async fn requeue_dead(
    State(state): State<AppState>,
    op: Operator,
    AppJson(body): AppJson<RequeueIn>,
) -> Result<Response, ApiError> {
    Ok(ok(actions::requeue_dead(&state, &op, body.kind).await?))
}

async fn queue_pause(State(state): State<AppState>, op: Operator, Path(n): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(actions::queue_pause(&state, &op, &n, true).await?))
}

async fn queue_resume(
    State(state): State<AppState>,
    op: Operator,
    Path(n): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(actions::queue_pause(&state, &op, &n, false).await?))
}

async fn cron(State(state): State<AppState>, _op: Operator) -> Result<Response, ApiError> {
    Ok(ok(data::cron_tasks(&state).await?))
}

async fn cron_runs(State(state): State<AppState>, _op: Operator, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    Ok(ok(data::cron_runs(&state, &query_pairs(q.as_deref())).await?))
}

async fn task_pause(State(state): State<AppState>, op: Operator, Path(t): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(actions::task_pause(&state, &op, &t, true).await?))
}

async fn task_resume(State(state): State<AppState>, op: Operator, Path(t): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(actions::task_pause(&state, &op, &t, false).await?))
}

async fn rate_limits(State(state): State<AppState>, _op: Operator) -> Result<Response, ApiError> {
    Ok(ok(data::rate_limits(&state).await?))
}

async fn telemetry(State(state): State<AppState>, _op: Operator, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    Ok(ok(data::telemetry(&state, &query_pairs(q.as_deref())).await?))
}

async fn route_trend(
    State(state): State<AppState>,
    _op: Operator,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    Ok(ok(super::trend::route_trend(&state.db, &query_pairs(q.as_deref()), chrono::Utc::now()).await?))
}

async fn orgs(State(state): State<AppState>, _op: Operator) -> Result<Response, ApiError> {
    Ok(ok(data::orgs(&state).await?))
}

async fn members(State(state): State<AppState>, _op: Operator, Path(id): Path<String>) -> Result<Response, ApiError> {
    let org = OrgId::parse(&id).map_err(|_| ApiError::bad_param("id", "must be an org id (a UUID)"))?;
    Ok(ok(data::org_members(&state, org).await?))
}

async fn operators(State(state): State<AppState>, _op: Operator) -> Result<Response, ApiError> {
    Ok(ok(data::operators(&state).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailIn {
    email: String,
}

async fn grant(
    State(state): State<AppState>,
    op: Operator,
    AppJson(body): AppJson<EmailIn>,
) -> Result<Response, ApiError> {
    Ok(ok(actions::grant(&state, &op, &body.email).await?))
}

async fn revoke(
    State(state): State<AppState>,
    op: Operator,
    AppJson(body): AppJson<EmailIn>,
) -> Result<Response, ApiError> {
    Ok(ok(actions::revoke(&state, &op, &body.email).await?))
}

async fn activity(State(state): State<AppState>, _op: Operator, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let pairs = query_pairs(q.as_deref());
    let (v, next) = data::activity(&state, &pairs).await?;
    Ok(page(v, "/api/ops/activity", &pairs, next.map(|n| n.to_string())))
}
