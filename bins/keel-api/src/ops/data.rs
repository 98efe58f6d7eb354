//! What the operator sees, as JSON documents both `/api/ops/*` and the console render. The
//! queue documents are keel-queue's [`keel_queue::ops_json`], the ones `keel-ops … --json`
//! prints, so the remote and local modes agree byte for byte. Sealed arguments show as
//! `[sealed]`, email addresses are masked (job payloads and errors, cron errors, members,
//! rate-limit keys), and nothing here reads billing data.

use crate::extract::param;
use crate::{ApiError, AppState};
use keel_ids::OrgId;
use keel_queue::store::RunFilter;
use keel_queue::{ops_json, JobFilter, JobId, JobState, QueueError};
use serde_json::{json, Value};

/// Jobs per page at most (keel-queue's own cap on a list).
pub(crate) const MAX_JOBS_PAGE: u32 = 1000;
/// Execution-log rows read to find each task's last outcome: enough for every task of a
/// deployment to appear, bounded so the overview stays one small read.
const CRON_RECENT_RUNS: u32 = 500;
/// Orgs listed in the tree at most; a platform with more pages through keel-ops.
const MAX_ORGS: u32 = 1000;

/// A queue error as the API answers it: 404, 409, 422 or 503 with the cause (addresses masked).
pub(crate) fn qerr(e: QueueError) -> ApiError {
    let text = keel_ids::mask_email(&e.to_string());
    match e {
        QueueError::NotFound(_) => ApiError::not_found(text),
        QueueError::WrongState { .. } | QueueError::DedupeConflict { .. } => {
            ApiError::new(axum::http::StatusCode::CONFLICT, "conflict", "Conflict", text)
        }
        QueueError::Invalid { .. } => ApiError::bad_request(text),
        QueueError::Unavailable(_) | QueueError::TimedOut { .. } => ApiError::unavailable(text, 2),
        other => ApiError::internal(other),
    }
}

/// `GET /api/ops/queue/stats`: the document of `keel-ops queue stats --json`, from the shared
/// snapshot (at most one query per interval for every operator, scraper and probe together).
pub(crate) async fn queue_stats(state: &AppState) -> Result<Value, ApiError> {
    let snap = state.queue_snapshot.get().await.map_err(|e| {
        ApiError::unavailable(format!("the queue snapshot failed: {}", keel_ids::mask_email(&e.to_string())), 2)
    })?;
    Ok(ops_json::stats(&snap))
}

/// The overview: health (the checks of `/api/health`), the queue's counts and oldest pending
/// age, throughput and failures per minute over the last hour, active incident switches,
/// paused queues and tasks, and each cron task's last outcome.
pub(crate) async fn overview(state: &AppState) -> Result<Value, ApiError> {
    let health = state.health.check().await;
    let queue = queue_stats(state).await?;
    let throughput = state.ops.throughput(&state.db).await.map_err(qerr)?;
    let switches: Vec<String> = state.config.switches.current().active().map(str::to_owned).collect();
    let pauses = state.queue.cron_pauses().await.map_err(qerr)?;
    let tasks = cron_tasks(state).await?;
    Ok(json!({
        "health": serde_json::to_value(&health).unwrap_or(Value::Null),
        "queue": queue,
        "throughput": *throughput,
        "switches": switches,
        "paused_queues": queue["paused_queues"].clone(),
        "paused_tasks": pauses,
        "cron": tasks,
    }))
}

/// A job-list request: filters, the keyset cursor and the page size, or a search by id.
#[derive(Debug, Default, Clone)]
pub(crate) struct JobQuery {
    pub(crate) state: Option<JobState>,
    pub(crate) kind: Option<String>,
    pub(crate) queue: Option<String>,
    pub(crate) before: Option<JobId>,
    pub(crate) id: Option<JobId>,
    pub(crate) limit: u32,
}

fn job_id_param(field: &str, raw: &str) -> Result<JobId, ApiError> {
    raw.parse().map_err(|_| ApiError::bad_param(field, "must be a job id (a UUID)"))
}

impl JobQuery {
    /// From `state`, `kind`, `queue`, `before`, `id` and `limit` (1 to 1,000, default 100).
    pub(crate) fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let nonempty = |name: &str| param(pairs, name).filter(|v| !v.is_empty()).map(str::to_owned);
        let state = nonempty("state")
            .map(|s| {
                s.parse::<JobState>().map_err(|_| {
                    ApiError::bad_param(
                        "state",
                        "must be pending, processing, retrying, completed, failed, dead_letter or cancelled",
                    )
                })
            })
            .transpose()?;
        let limit = match param(pairs, "limit") {
            None | Some("") => 100,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_JOBS_PAGE).contains(n))
                .ok_or_else(|| ApiError::bad_param("limit", format!("must be from 1 to {MAX_JOBS_PAGE}")))?,
        };
        Ok(Self {
            state,
            kind: nonempty("kind"),
            queue: nonempty("queue"),
            before: nonempty("before").map(|b| job_id_param("before", &b)).transpose()?,
            id: nonempty("id").map(|b| job_id_param("id", &b)).transpose()?,
            limit,
        })
    }
}

/// A page of jobs (the document of `keel-ops queue list --json`: an array) and the cursor of
/// the next page when this one was full.
pub(crate) async fn jobs(state: &AppState, q: &JobQuery) -> Result<(Value, Option<JobId>), ApiError> {
    if let Some(id) = q.id {
        let found = state.queue.get(id).await.map_err(qerr)?;
        let list: Vec<_> = found.into_iter().collect();
        return Ok((ops_json::jobs(&list), None));
    }
    let filter = JobFilter {
        state: q.state,
        kind: q.kind.clone(),
        queue: q.queue.clone(),
        before: q.before,
        limit: Some(q.limit),
        ..Default::default()
    };
    let list = state.queue.list(filter).await.map_err(qerr)?;
    let next = if list.len() as u32 == q.limit { list.last().map(|j| j.id) } else { None };
    Ok((ops_json::jobs(&list), next))
}

/// One job (the document of `keel-ops queue show ID`), or 404.
pub(crate) async fn job(state: &AppState, id: JobId) -> Result<Value, ApiError> {
    let job = state.queue.get(id).await.map_err(qerr)?.ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    Ok(ops_json::job(&job))
}

/// Each scheduled task seen in the recent execution log with its last run (status, duration,
/// skipped ticks, error): a silently failing schedule shows as failing here.
pub(crate) async fn cron_tasks(state: &AppState) -> Result<Value, ApiError> {
    let runs = state.queue.cron_runs(RunFilter { task: None, limit: Some(CRON_RECENT_RUNS) }).await.map_err(qerr)?;
    let pauses = state.queue.cron_pauses().await.map_err(qerr)?;
    let mut seen = std::collections::BTreeMap::new();
    for r in &runs {
        // Newest first: the first row of a task is its last run.
        seen.entry(r.task.clone()).or_insert(r);
    }
    let all_paused = pauses.iter().any(|p| p.task == "all");
    let tasks: Vec<Value> = seen
        .into_iter()
        .map(|(task, r)| {
            let mut last = ops_json::cron_runs(std::slice::from_ref(r))[0].take();
            let duration_ms = r.finished_at.map(|f| (f - r.started_at).num_milliseconds());
            last["duration_ms"] = json!(duration_ms);
            let paused = all_paused || pauses.iter().any(|p| p.task == task);
            json!({"task": task, "paused": paused, "last_run": last})
        })
        .collect();
    Ok(json!({"tasks": tasks, "pauses": pauses}))
}

/// `GET /api/ops/cron/runs`: the document of `keel-ops cron runs --json`.
pub(crate) async fn cron_runs(state: &AppState, pairs: &[(String, String)]) -> Result<Value, ApiError> {
    let limit = match param(pairs, "limit") {
        None | Some("") => 50,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::bad_param("limit", "must be from 1 to 1000"))?,
    };
    let task = param(pairs, "task").filter(|t| !t.is_empty()).map(str::to_owned);
    let runs = state.queue.cron_runs(RunFilter { task, limit: Some(limit) }).await.map_err(qerr)?;
    Ok(ops_json::cron_runs(&runs))
}

/// Each rate-limit policy: quota, backend and key, its decisions and denials since this process
/// started, the series sampled while operators watch, and for shared policies the keys most
/// recently denied (addresses masked).
pub(crate) async fn rate_limits(state: &AppState) -> Result<Value, ApiError> {
    let l = &state.limits;
    let metrics = [
        l.admin_api.metrics(),
        l.public_ingress.metrics(),
        l.telemetry_ingest.metrics(),
        l.password_recovery.metrics(),
        l.sign_in_failures.metrics(),
        l.operator_console.metrics(),
    ];
    let series = state.ops.sample_limits(|| {
        metrics
            .iter()
            .map(|m| super::live::PolicyCounts {
                policy: m.policy.clone(),
                allowed: m.allowed,
                denied: m.rejected,
                unavailable: m.unavailable,
            })
            .collect()
    });
    let denied = super::denied::recent_denials(&state.db).await?;
    let policies: Vec<Value> = state
        .config
        .rate_limits
        .iter()
        .map(|p| {
            let m = metrics.iter().find(|m| m.policy == *p.name);
            json!({
                "policy": &*p.name,
                "quota": p.quota.to_string(),
                "backend": match p.backend { keel_ratelimit::Backend::InProcess => "in_process", keel_ratelimit::Backend::Shared => "shared" },
                "key": format!("{:?}", p.key),
                "allowed": m.map(|m| m.allowed),
                "denied": m.map(|m| m.rejected),
                "unavailable": m.map(|m| m.unavailable),
                "recently_denied_keys": denied.get(&*p.name).cloned().unwrap_or_default(),
            })
        })
        .collect();
    Ok(json!({"policies": policies, "series": series}))
}

/// The telemetry report `keel-ops telemetry export --format json` writes, over `days` (1 to 366,
/// default 7).
pub(crate) async fn telemetry(state: &AppState, pairs: &[(String, String)]) -> Result<Value, ApiError> {
    let days = match param(pairs, "days") {
        None | Some("") => 7,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=366).contains(d))
            .ok_or_else(|| ApiError::bad_param("days", "must be from 1 to 366"))?,
    };
    let opts = keel_telemetry::ReportOptions { days, ..Default::default() };
    // build_report takes a progress callback that is not `Send`, so the report runs on a
    // blocking thread of its own (it is an occasional, bounded read: statement timeouts inside).
    let db = state.db.clone();
    let handle = tokio::runtime::Handle::current();
    let report = tokio::task::spawn_blocking(move || {
        handle.block_on(keel_telemetry::build_report(&db, &opts, chrono::Utc::now(), &mut |_| {}))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| ApiError::unavailable(format!("the telemetry report failed: {e}"), 5))?;
    serde_json::from_str(&report.to_json()).map_err(ApiError::internal)
}

/// The org tree as a flat list (each org names its parent); the console nests it.
pub(crate) async fn orgs(state: &AppState) -> Result<Value, ApiError> {
    let orgs = state.tenancy.all_orgs(MAX_ORGS).await.map_err(crate::error::from_tenancy)?;
    let list: Vec<Value> = orgs.iter().map(|o| json!({"id": o.id, "name": o.name, "parent_id": o.parent_id})).collect();
    Ok(json!({"orgs": list, "truncated": list.len() as u32 == MAX_ORGS}))
}

/// An org's direct members with their roles, addresses masked.
pub(crate) async fn org_members(state: &AppState, org: OrgId) -> Result<Value, ApiError> {
    if state.tenancy.org(org).await.map_err(crate::error::from_tenancy)?.is_none() {
        return Err(ApiError::not_found(format!("no org {org}")));
    }
    let members = state.tenancy.org_members(org).await.map_err(crate::error::from_tenancy)?;
    let list: Vec<Value> = members
        .iter()
        .map(|m| json!({"user_id": m.user_id, "email": m.email.to_string(), "role": m.role.as_str()}))
        .collect();
    Ok(json!({"org_id": org, "members": list}))
}

/// Every operator, addresses masked.
pub(crate) async fn operators(state: &AppState) -> Result<Value, ApiError> {
    let list = state.tenancy.operators().await.map_err(crate::error::from_tenancy)?;
    let rows: Vec<Value> = list
        .iter()
        .map(|g| {
            json!({"user_id": g.user_id, "email": g.email.to_string(), "granted_at": g.granted_at, "granted_by": g.granted_by})
        })
        .collect();
    Ok(Value::Array(rows))
}

/// A page of the activity log, newest first, and the cursor of the next page when full.
pub(crate) async fn activity(
    state: &AppState,
    pairs: &[(String, String)],
) -> Result<(Value, Option<uuid::Uuid>), ApiError> {
    let limit = match param(pairs, "limit") {
        None | Some("") => 100,
        Some(v) => v.parse::<u32>().map_err(|_| {
            ApiError::bad_param("limit", format!("must be from 1 to {}", keel_tenancy::MAX_ACTIVITY_PAGE))
        })?,
    };
    let before = param(pairs, "before")
        .filter(|b| !b.is_empty())
        .map(|b| uuid::Uuid::parse_str(b).map_err(|_| ApiError::bad_param("before", "must be an activity id (a UUID)")))
        .transpose()?;
    let page = state.tenancy.operator_actions(before, limit).await.map_err(crate::error::from_tenancy)?;
    let next = if page.len() as u32 == limit { page.last().map(|a| a.id) } else { None };
    let rows: Vec<Value> = page
        .iter()
        .map(|a| {
            json!({
                "id": a.id,
                "operator_id": a.operator_id,
                "action": a.action,
                "target": a.target,
                "detail": a.detail,
                "at": a.at,
                "remote_addr": a.remote_addr,
            })
        })
        .collect();
    Ok((Value::Array(rows), next))
}
