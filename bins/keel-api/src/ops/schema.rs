//! The operator API's parameters and answer shapes for the OpenAPI document. Documentation
//! only: the handlers read raw queries (so a bad value is a problem naming the parameter) and
//! build their answers in [`super::data`] and [`super::actions`]; the queue documents shared
//! with `keel-ops … --json` are keel-queue's own types ([`keel_queue::Job`],
//! [`keel_queue::store::CronRun`], …), described by its `openapi` feature, and the shapes here
//! name the fields those modules write, each type next to the function that fills it.
#![allow(dead_code)] // fields are read by the derives, never by code

use super::data::{MAX_JOBS_PAGE, MAX_RUNS_PAGE};
use crate::routes::schema::{integer, one_of, string};
use keel_queue::ops_json::QueueStats;
use keel_queue::store::{CronPause, CronRun};
use keel_queue::MinuteCounts;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

/// The job states a list may filter on.
const JOB_STATES: &[&str] = &["pending", "processing", "retrying", "completed", "failed", "dead_letter", "cancelled"];

fn job_limit_schema() -> utoipa::openapi::Object {
    integer(1, i64::from(MAX_JOBS_PAGE))
}
fn runs_limit_schema() -> utoipa::openapi::Object {
    integer(1, i64::from(MAX_RUNS_PAGE))
}
fn activity_limit_schema() -> utoipa::openapi::Object {
    integer(1, i64::from(keel_tenancy::MAX_ACTIVITY_PAGE))
}
fn telemetry_days_schema() -> utoipa::openapi::Object {
    integer(1, i64::from(super::data::MAX_REPORT_DAYS))
}
fn trend_days_schema() -> utoipa::openapi::Object {
    integer(1, i64::from(super::trend::MAX_DAYS))
}
fn state_schema() -> utoipa::openapi::Object {
    one_of(JOB_STATES)
}

fn name_schema() -> utoipa::openapi::Object {
    string(1, super::actions::MAX_NAME_LEN)
}

/// A job in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct JobPath {
    /// The job's id.
    id: uuid::Uuid,
}

/// An org in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct OrgPath {
    /// The org's id.
    id: uuid::Uuid,
}

/// A queue in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct QueuePath {
    /// The queue's name (printable characters).
    #[param(schema_with = name_schema)]
    name: String,
}

/// A scheduled task in the path, or `all`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct TaskPath {
    /// The task's name (printable characters), or `all` for every task.
    #[param(schema_with = name_schema)]
    task: String,
}

/// `X-CSRF-Token`: with the session cookie a POST must carry the session's token (from
/// `GET /api/ops/me`); with a bearer token it is not needed. Read by [`super::Operator`].
#[derive(IntoParams)]
#[into_params(names("X-CSRF-Token"), parameter_in = Header)]
pub(crate) struct CsrfHeader(#[param(nullable = false)] Option<String>);

/// `GET /api/ops/jobs`: filters, the keyset cursor and the page size, or a search by id.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct JobsQuery {
    /// Only jobs in this state.
    #[param(schema_with = state_schema)]
    state: Option<String>,
    /// Only jobs of this kind, like `email.send`.
    #[param(nullable = false)]
    kind: Option<String>,
    /// Only jobs in this queue.
    #[param(nullable = false)]
    queue: Option<String>,
    /// The one job with this id (the other filters are then ignored).
    #[param(nullable = false)]
    id: Option<uuid::Uuid>,
    /// Keyset cursor: jobs older than this job id (the `before` of the `Link: rel="next"` URL).
    #[param(nullable = false)]
    before: Option<uuid::Uuid>,
    /// Page size; 100 when absent.
    #[param(schema_with = job_limit_schema)]
    limit: Option<u32>,
}

/// `GET /api/ops/cron/runs`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RunsQuery {
    /// Only this task's runs.
    #[param(nullable = false)]
    task: Option<String>,
    /// Rows, newest first; 50 when absent.
    #[param(schema_with = runs_limit_schema)]
    limit: Option<u32>,
}

/// `GET /api/ops/activity`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ActivityQuery {
    /// Keyset cursor: entries older than this activity id (the `before` of the `Link: rel="next"` URL).
    #[param(nullable = false)]
    before: Option<uuid::Uuid>,
    /// Page size; 100 when absent.
    #[param(schema_with = activity_limit_schema)]
    limit: Option<u32>,
}

/// `GET /api/ops/telemetry`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TelemetryQuery {
    /// Days back the report covers; 7 when absent.
    #[param(schema_with = telemetry_days_schema)]
    days: Option<u32>,
}

/// `GET /api/ops/telemetry/routes`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TrendQuery {
    /// Days back the chart covers, one point a day; 7 when absent.
    #[param(schema_with = trend_days_schema)]
    days: Option<u32>,
}

/// How the caller authenticated.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Via {
    /// The browser session cookie.
    Session,
    /// An operator-scoped bearer token.
    Token,
}

/// `GET /api/ops/me`.
#[derive(Serialize, ToSchema)]
pub(crate) struct Me {
    user_id: uuid::Uuid,
    /// The caller's address (null if the user row is gone).
    email: Option<String>,
    via: Via,
    /// The token a cookie POST sends as `X-CSRF-Token`; null for a bearer token.
    csrf_token: Option<String>,
}

/// A cron run as the cron view shows it: the execution-log row plus its duration.
#[derive(Serialize, ToSchema)]
pub(crate) struct LastRun {
    #[serde(flatten)]
    run: CronRun,
    /// Milliseconds from start to finish; null while running.
    duration_ms: Option<i64>,
}

/// One scheduled task seen in the recent execution log.
#[derive(Serialize, ToSchema)]
pub(crate) struct CronTask {
    task: String,
    /// Paused by its own pause or by `all`.
    paused: bool,
    last_run: LastRun,
}

/// `GET /api/ops/cron`: each task's last run and the pauses in force.
#[derive(Serialize, ToSchema)]
pub(crate) struct CronTasks {
    tasks: Vec<CronTask>,
    pauses: Vec<CronPause>,
}

/// `GET /api/ops/overview`.
#[derive(Serialize, ToSchema)]
pub(crate) struct Overview {
    /// The checks of `GET /api/health`.
    health: keel_health::HealthReport,
    queue: QueueStats,
    /// Completed and failed jobs per minute over the last hour, oldest first.
    throughput: Vec<MinuteCounts>,
    /// Incident switches in force.
    switches: Vec<String>,
    paused_queues: Vec<String>,
    paused_tasks: Vec<CronPause>,
    cron: CronTasks,
}

/// A rate-limit backend.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LimitBackend {
    InProcess,
    Shared,
}

/// One rate-limit policy; the counters are since this process started (null for a policy
/// this process does not enforce).
#[derive(Serialize, ToSchema)]
pub(crate) struct PolicyView {
    policy: String,
    /// Like `100/1m`.
    quota: String,
    backend: LimitBackend,
    /// What the policy is keyed by.
    key: String,
    allowed: Option<u64>,
    denied: Option<u64>,
    unavailable: Option<u64>,
    /// For shared policies, the keys most recently denied, addresses masked.
    recently_denied_keys: Vec<String>,
}

/// One policy's counters in a sample.
#[derive(Serialize, ToSchema)]
pub(crate) struct PolicyCountsView {
    policy: String,
    allowed: u64,
    denied: u64,
    unavailable: u64,
}

/// Every policy's counters at one instant.
#[derive(Serialize, ToSchema)]
pub(crate) struct LimitSampleView {
    at: chrono::DateTime<chrono::Utc>,
    policies: Vec<PolicyCountsView>,
}

/// `GET /api/ops/rate-limits`.
#[derive(Serialize, ToSchema)]
pub(crate) struct RateLimits {
    policies: Vec<PolicyView>,
    /// Samples taken while operators watch, oldest first.
    series: Vec<LimitSampleView>,
}

/// One day of a route's latency.
#[derive(Serialize, ToSchema)]
pub(crate) struct TrendPoint {
    day: chrono::NaiveDate,
    samples: u64,
    /// Null on a day without samples.
    p95_us: Option<u64>,
    /// Null unless the day has enough samples for a p99.
    p99_us: Option<u64>,
}

/// One charted route.
#[derive(Serialize, ToSchema)]
pub(crate) struct TrendRoute {
    /// Where the samples came from (`browser` or `api`).
    kind: String,
    route: String,
    points: Vec<TrendPoint>,
}

/// `GET /api/ops/telemetry/routes`: p95/p99 per day of the slowest routes.
#[derive(Serialize, ToSchema)]
pub(crate) struct RouteTrend {
    days: u32,
    routes: Vec<TrendRoute>,
}

/// One org of the tree.
#[derive(Serialize, ToSchema)]
pub(crate) struct OrgNode {
    id: uuid::Uuid,
    name: String,
    /// Null for a root org.
    parent_id: Option<uuid::Uuid>,
}

/// `GET /api/ops/orgs`: the tree as a flat list.
#[derive(Serialize, ToSchema)]
pub(crate) struct Orgs {
    orgs: Vec<OrgNode>,
    /// True when the list stopped at its cap (page through keel-ops for the rest).
    truncated: bool,
}

/// One member of an org.
#[derive(Serialize, ToSchema)]
pub(crate) struct Member {
    user_id: uuid::Uuid,
    /// Masked.
    email: String,
    role: String,
}

/// `GET /api/ops/orgs/{id}/members`.
#[derive(Serialize, ToSchema)]
pub(crate) struct Members {
    org_id: uuid::Uuid,
    members: Vec<Member>,
}

/// One platform operator.
#[derive(Serialize, ToSchema)]
pub(crate) struct OperatorRow {
    user_id: uuid::Uuid,
    /// Masked.
    email: String,
    granted_at: chrono::DateTime<chrono::Utc>,
    /// Null when granted by keel-ops.
    granted_by: Option<uuid::Uuid>,
}

/// One activity-log entry.
#[derive(Serialize, ToSchema)]
pub(crate) struct ActivityRow {
    id: uuid::Uuid,
    operator_id: uuid::Uuid,
    /// Like `job.retry` or `operator.grant`.
    action: String,
    target: String,
    /// The action's details.
    detail: serde_json::Value,
    at: chrono::DateTime<chrono::Utc>,
    /// The connection's peer address (never a forwarding header).
    remote_addr: Option<String>,
}

/// A queue paused or resumed.
#[derive(Serialize, ToSchema)]
pub(crate) struct QueuePaused {
    queue: String,
    paused: bool,
    /// On resume: whether it was paused.
    #[schema(nullable = false)]
    was_paused: Option<bool>,
}

/// A scheduled task (or `all`) paused or resumed.
#[derive(Serialize, ToSchema)]
pub(crate) struct TaskPaused {
    task: String,
    paused: bool,
    /// On resume: whether it was paused.
    #[schema(nullable = false)]
    was_paused: Option<bool>,
}

/// The operator role granted.
#[derive(Serialize, ToSchema)]
pub(crate) struct Granted {
    user_id: uuid::Uuid,
    /// Masked.
    email: String,
    /// False when the user already was an operator.
    granted: bool,
}

/// The operator role revoked.
#[derive(Serialize, ToSchema)]
pub(crate) struct Revoked {
    user_id: uuid::Uuid,
    /// Masked.
    email: String,
    /// False when the user was not an operator.
    revoked: bool,
}
