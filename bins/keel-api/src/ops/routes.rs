//! `/api/ops/*`: the operator API, JSON over the same data and actions as the console. Layers
//! (outermost first, inside the edge stack every route has): the `operator_console` rate limit
//! (keyed by user, else client network, with no database round trip), the time budget, the
//! session middleware; then [`Operator`] in each handler (401 signed out, 403 without the
//! operator grant or scope, 403 for a cookie POST without its CSRF proof or from another
//! origin). Answers are `Cache-Control: no-store`. Each handler's `#[utoipa::path]` documents
//! it in `/api/openapi.json`, naming its answer's shape from [`super::schema`] or keel-queue;
//! `tests/it/ops_schema.rs` checks real answers against those shapes.

use super::schema::*;
use super::{actions, data, Operator, OperatorVia};
use crate::error::Problem;
use crate::extract::{query_pairs, AppJson};
use crate::routes::openapi::{BadRequest, Invalid, NotFound, TooLarge};
use crate::{ApiError, AppState};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use keel_ids::OrgId;
use keel_queue::ops_json::QueueStats;
use keel_queue::JobId;
use keel_queue::{store::CronRun, Job, RequeueReport};
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
#[utoipa::path(
    get,
    path = "/api/ops/me",
    tag = "ops",
    summary = "Who is calling, and the session's CSRF token for POSTs",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
    )
)]
pub(crate) async fn me(State(state): State<AppState>, op: Operator) -> Result<Response, ApiError> {
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

#[utoipa::path(
    get,
    path = "/api/ops/overview",
    tag = "ops",
    summary = "Health, queue counts, throughput per minute, switches, pauses and cron outcomes",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The overview", body = Overview),
    )
)]
pub(crate) async fn overview(State(state): State<AppState>, _op: Operator) -> Result<Response, ApiError> {
    Ok(ok(data::overview(&state).await?))
}

#[utoipa::path(
    get,
    path = "/api/ops/queue/stats",
    tag = "ops",
    summary = "The document `keel-ops queue stats --json` prints",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Counts per state and kind", body = QueueStats),
    )
)]
pub(crate) async fn queue_stats(State(state): State<AppState>, _op: Operator) -> Result<Response, ApiError> {
    Ok(ok(data::queue_stats(&state).await?))
}

#[utoipa::path(
    get,
    path = "/api/ops/jobs",
    tag = "ops",
    summary = "Jobs by state, kind and queue, newest first, in keyset pages (`Link: rel=next`)",
    params(JobsQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of jobs (the document of `keel-ops queue list --json`)", body = Vec<Job>, headers(("Link" = String, description = "`<…?before=ID>; rel=\"next\"`: the next page, when this one is full"))),
        (status = 400, response = BadRequest),
    )
)]
pub(crate) async fn jobs(
    State(state): State<AppState>,
    _op: Operator,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(q.as_deref());
    let query = data::JobQuery::parse(&pairs)?;
    let (v, next) = data::jobs(&state, &query).await?;
    Ok(page(v, "/api/ops/jobs", &pairs, next.map(|n| n.to_string())))
}

#[utoipa::path(
    get,
    path = "/api/ops/jobs/{id}",
    tag = "ops",
    summary = "One job (`keel-ops queue show`): sealed arguments as `[sealed]`, addresses masked",
    params(JobPath),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The job", body = Job),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn job(
    State(state): State<AppState>,
    _op: Operator,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(data::job(&state, job_id(&id)?).await?))
}

#[utoipa::path(
    post,
    path = "/api/ops/jobs/{id}/retry",
    tag = "ops",
    summary = "Run a failed, dead-lettered or cancelled job again (recorded in the activity log)",
    params(JobPath, CsrfHeader),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The job, waiting again", body = Job),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 409, description = "The job is not in a state this action applies to", content_type = "application/problem+json", body = Problem),
    )
)]
pub(crate) async fn retry(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(actions::retry(&state, &op, job_id(&id)?).await?))
}

#[utoipa::path(
    post,
    path = "/api/ops/jobs/{id}/cancel",
    tag = "ops",
    summary = "Cancel a pending or retrying job (recorded)",
    params(JobPath, CsrfHeader),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The cancelled job", body = Job),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 409, description = "The job is not in a state this action applies to", content_type = "application/problem+json", body = Problem),
    )
)]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(actions::cancel(&state, &op, job_id(&id)?).await?))
}

#[utoipa::path(
    post,
    path = "/api/ops/jobs/{id}/requeue",
    tag = "ops",
    summary = "Requeue one dead-lettered job with fresh attempts (recorded)",
    params(JobPath, CsrfHeader),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The job, pending again", body = Job),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 409, description = "The job is not in a state this action applies to", content_type = "application/problem+json", body = Problem),
    )
)]
pub(crate) async fn requeue_one(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(actions::requeue_one(&state, &op, job_id(&id)?).await?))
}

/// `{"kind": "email.send"}` requeues that kind's dead jobs; `{}` every dead job.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequeueIn {
    /// Only dead jobs of this kind, like `email.send`.
    #[serde(default)]
    #[schema(nullable = false)]
    kind: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/ops/dead/requeue",
    tag = "ops",
    summary = "Requeue every dead-lettered job, or one kind's (recorded)",
    params(CsrfHeader),
    request_body = RequeueIn,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "How many were requeued, and the ids left dead because their dedupe key is held", body = RequeueReport),
        (status = 400, response = BadRequest),
        (status = 413, response = TooLarge),
        (status = 422, response = Invalid),
    )
)]
pub(crate) async fn requeue_dead(
    State(state): State<AppState>,
    op: Operator,
    AppJson(body): AppJson<RequeueIn>,
) -> Result<Response, ApiError> {
    Ok(ok(actions::requeue_dead(&state, &op, body.kind).await?))
}

#[utoipa::path(
    post,
    path = "/api/ops/queues/{name}/pause",
    tag = "ops",
    summary = "Pause a queue for every worker (recorded)",
    params(QueuePath, CsrfHeader),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Paused", body = QueuePaused),
        (status = 400, response = BadRequest),
    )
)]
pub(crate) async fn queue_pause(
    State(state): State<AppState>,
    op: Operator,
    Path(n): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(actions::queue_pause(&state, &op, &n, true).await?))
}

#[utoipa::path(
    post,
    path = "/api/ops/queues/{name}/resume",
    tag = "ops",
    summary = "Resume a queue (recorded)",
    params(QueuePath, CsrfHeader),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Resumed; `was_paused` says whether it was", body = QueuePaused),
        (status = 400, response = BadRequest),
    )
)]
pub(crate) async fn queue_resume(
    State(state): State<AppState>,
    op: Operator,
    Path(n): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(actions::queue_pause(&state, &op, &n, false).await?))
}

#[utoipa::path(
    get,
    path = "/api/ops/cron",
    tag = "ops",
    summary = "Each scheduled task's last run and the pauses in force",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Tasks and pauses", body = CronTasks),
    )
)]
pub(crate) async fn cron(State(state): State<AppState>, _op: Operator) -> Result<Response, ApiError> {
    Ok(ok(data::cron_tasks(&state).await?))
}

#[utoipa::path(
    get,
    path = "/api/ops/cron/runs",
    tag = "ops",
    summary = "The execution log (`keel-ops cron runs --json`), newest first",
    params(RunsQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Execution-log rows, errors with addresses masked", body = Vec<CronRun>),
        (status = 400, response = BadRequest),
    )
)]
pub(crate) async fn cron_runs(
    State(state): State<AppState>,
    _op: Operator,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    Ok(ok(data::cron_runs(&state, &query_pairs(q.as_deref())).await?))
}

#[utoipa::path(
    post,
    path = "/api/ops/cron/{task}/pause",
    tag = "ops",
    summary = "Pause a scheduled task, or `all` (recorded)",
    params(TaskPath, CsrfHeader),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Paused", body = TaskPaused),
        (status = 400, response = BadRequest),
    )
)]
pub(crate) async fn task_pause(
    State(state): State<AppState>,
    op: Operator,
    Path(t): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(actions::task_pause(&state, &op, &t, true).await?))
}

#[utoipa::path(
    post,
    path = "/api/ops/cron/{task}/resume",
    tag = "ops",
    summary = "Resume a scheduled task, or `all` (recorded)",
    params(TaskPath, CsrfHeader),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Resumed; `was_paused` says whether it was", body = TaskPaused),
        (status = 400, response = BadRequest),
    )
)]
pub(crate) async fn task_resume(
    State(state): State<AppState>,
    op: Operator,
    Path(t): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(actions::task_pause(&state, &op, &t, false).await?))
}

#[utoipa::path(
    get,
    path = "/api/ops/rate-limits",
    tag = "ops",
    summary = "Each policy's quota, backend, decisions and denials, denied keys masked",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Policies and the sampled series", body = RateLimits),
    )
)]
pub(crate) async fn rate_limits(State(state): State<AppState>, _op: Operator) -> Result<Response, ApiError> {
    Ok(ok(data::rate_limits(&state).await?))
}

#[utoipa::path(
    get,
    path = "/api/ops/telemetry",
    tag = "ops",
    summary = "The report `keel-ops telemetry export --format json` writes",
    params(TelemetryQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "keel-telemetry's report (its JSON export; see that crate's README for the fields)", body = Object),
        (status = 400, response = BadRequest),
    )
)]
pub(crate) async fn telemetry(
    State(state): State<AppState>,
    _op: Operator,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    Ok(ok(data::telemetry(&state, &query_pairs(q.as_deref())).await?))
}

#[utoipa::path(
    get,
    path = "/api/ops/telemetry/routes",
    tag = "ops",
    summary = "p95 and p99 per day of the slowest routes, for the console's chart",
    params(TrendQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "One series per charted route", body = RouteTrend),
        (status = 400, response = BadRequest),
    )
)]
pub(crate) async fn route_trend(
    State(state): State<AppState>,
    _op: Operator,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    Ok(ok(super::trend::route_trend(&state.db, &query_pairs(q.as_deref()), chrono::Utc::now()).await?))
}

#[utoipa::path(
    get,
    path = "/api/ops/orgs",
    tag = "ops",
    summary = "The org tree, as a flat list (read-only)",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Orgs, each naming its parent", body = Orgs),
    )
)]
pub(crate) async fn orgs(State(state): State<AppState>, _op: Operator) -> Result<Response, ApiError> {
    Ok(ok(data::orgs(&state).await?))
}

#[utoipa::path(
    get,
    path = "/api/ops/orgs/{id}/members",
    tag = "ops",
    summary = "An org's members and roles, addresses masked (read-only)",
    params(OrgPath),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The members", body = Members),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn members(
    State(state): State<AppState>,
    _op: Operator,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let org = OrgId::parse(&id).map_err(|_| ApiError::bad_param("id", "must be an org id (a UUID)"))?;
    Ok(ok(data::org_members(&state, org).await?))
}

#[utoipa::path(
    get,
    path = "/api/ops/operators",
    tag = "ops",
    summary = "Every platform operator, addresses masked",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The operators", body = Vec<OperatorRow>),
    )
)]
pub(crate) async fn operators(State(state): State<AppState>, _op: Operator) -> Result<Response, ApiError> {
    Ok(ok(data::operators(&state).await?))
}

/// The user an operator grant or revoke is about.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmailIn {
    /// The user's address.
    #[schema(format = Email)]
    email: String,
}

#[utoipa::path(
    post,
    path = "/api/ops/operators/grant",
    tag = "ops",
    summary = "Grant the operator role to the user with this address (recorded)",
    params(CsrfHeader),
    request_body = EmailIn,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Granted (`granted` false when already an operator)", body = Granted),
        (status = 400, response = BadRequest),
        (status = 413, response = TooLarge),
        (status = 422, response = Invalid),
    )
)]
pub(crate) async fn grant(
    State(state): State<AppState>,
    op: Operator,
    AppJson(body): AppJson<EmailIn>,
) -> Result<Response, ApiError> {
    Ok(ok(actions::grant(&state, &op, &body.email).await?))
}

#[utoipa::path(
    post,
    path = "/api/ops/operators/revoke",
    tag = "ops",
    summary = "Revoke another user's operator role (recorded); not one's own",
    params(CsrfHeader),
    request_body = EmailIn,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Revoked (`revoked` false when not an operator)", body = Revoked),
        (status = 400, response = BadRequest),
        (status = 413, response = TooLarge),
        (status = 422, response = Invalid),
    )
)]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    op: Operator,
    AppJson(body): AppJson<EmailIn>,
) -> Result<Response, ApiError> {
    Ok(ok(actions::revoke(&state, &op, &body.email).await?))
}

#[utoipa::path(
    get,
    path = "/api/ops/activity",
    tag = "ops",
    summary = "Every operator action, newest first, in keyset pages (`Link: rel=next`)",
    params(ActivityQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of the activity log", body = Vec<ActivityRow>, headers(("Link" = String, description = "`<…?before=ID>; rel=\"next\"`: the next page, when this one is full"))),
        (status = 400, response = BadRequest),
    )
)]
pub(crate) async fn activity(
    State(state): State<AppState>,
    _op: Operator,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(q.as_deref());
    let (v, next) = data::activity(&state, &pairs).await?;
    Ok(page(v, "/api/ops/activity", &pairs, next.map(|n| n.to_string())))
}
