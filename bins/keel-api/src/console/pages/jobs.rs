//! `/console/jobs`: what is stuck, failing or dead, and why; a job's detail; and the verbs
//! (retry, cancel, requeue dead-lettered), each a confirmed POST with the CSRF proofs.

use crate::console::gate::Operator;
use crate::console::layout::{self, Page};
use crate::console::{activity_log, csrf};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use keel_queue::{Job, JobFilter, JobId, JobState};
use maud::{html, Markup};
use serde::Deserialize;

/// Jobs per page of the list.
const PAGE_SIZE: u32 = 50;

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    queue: String,
    /// A job id to jump to.
    #[serde(default)]
    id: String,
    #[serde(default)]
    done: Option<String>,
}

pub(crate) async fn list(State(state): State<AppState>, op: Operator, Query(q): Query<ListQuery>) -> Response {
    let id = q.id.trim();
    if !id.is_empty() {
        return match id.parse::<JobId>() {
            Ok(id) => Redirect::to(&format!("/console/jobs/{id}")).into_response(),
            Err(_) => render_list(&op, &q, &[], Some("id: not a job id (a UUID, like the ones in the list)")),
        };
    }
    let job_state = match q.state.trim() {
        "" => None,
        s => match s.parse::<JobState>() {
            Ok(s) => Some(s),
            Err(_) => return render_list(&op, &q, &[], Some("state: choose one of the listed states")),
        },
    };
    let non_empty = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let filter = JobFilter {
        state: job_state,
        kind: non_empty(&q.kind),
        queue: non_empty(&q.queue),
        limit: Some(PAGE_SIZE),
        ..Default::default()
    };
    match state.queue.list(filter).await {
        Ok(jobs) => render_list(&op, &q, &jobs, None),
        Err(e) => super::failed("listing jobs", e),
    }
}

fn render_list(op: &Operator, q: &ListQuery, jobs: &[Job], error: Option<&str>) -> Response {
    let body = html! {
        (layout::flash(q.done.as_deref()))
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form.filters method="get" action="/console/jobs" {
            label { "State"
                select name="state" {
                    option value="" selected[q.state.is_empty()] { "any" }
                    @for s in JobState::ALL {
                        option value=(s.as_str()) selected[q.state == s.as_str()] { (s.as_str()) }
                    }
                }
            }
            label { "Kind" input name="kind" value=(q.kind) placeholder="email.send"; }
            label { "Queue" input name="queue" value=(q.queue) placeholder="default"; }
            button type="submit" { "Filter" }
            label { "Job id" input name="id" placeholder="UUID"; }
            button type="submit" { "Open" }
        }
        @if q.state == JobState::DeadLetter.as_str() {
            p { (layout::action(op, "/console/jobs/requeue-dead", "Requeue all dead-lettered jobs of this kind", "Requeue these dead-lettered jobs?", &[("kind", q.kind.as_str())])) }
        }
        (table(jobs))
    };
    Page { title: "Jobs", nav: "/console/jobs", live: true }.render(op, body)
}

fn table(jobs: &[Job]) -> Markup {
    html! {
        @if jobs.is_empty() {
            p.muted { "No jobs match." }
        } @else {
            table {
                thead { tr { th { "id" } th { "kind" } th { "queue" } th { "state" } th.num { "attempt" } th { "run at" } th { "last error" } } }
                tbody {
                    @for j in jobs {
                        tr data-job=(j.id) {
                            td { a href={ "/console/jobs/" (j.id) } { code { (short(&j.id)) } } }
                            td { (j.kind) }
                            td { (j.queue) }
                            td class={ "state-" (j.state.as_str()) } { (j.state.as_str()) }
                            td.num { (j.attempt) "/" (j.max_attempts) }
                            td { (j.run_at.format("%Y-%m-%d %H:%M:%S")) }
                            td { (j.last_error.as_deref().map(keel_ids::mask_email).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
    }
}

fn short(id: &JobId) -> String {
    id.to_string().chars().take(8).collect()
}

#[derive(Deserialize, Default)]
pub(crate) struct DetailQuery {
    #[serde(default)]
    done: Option<String>,
}

pub(crate) async fn detail(
    State(state): State<AppState>,
    op: Operator,
    Path(raw): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let Ok(id) = raw.parse::<JobId>() else {
        return layout::error_page(StatusCode::NOT_FOUND, "No such job", "That is not a job id (a UUID).");
    };
    let job = match state.queue.get(id).await {
        Ok(Some(j)) => j,
        Ok(None) => return layout::error_page(StatusCode::NOT_FOUND, "No such job", "No job has that id (pruned?)."),
        Err(e) => return super::failed("reading the job", e),
    };
    let path = |verb: &str| format!("/console/jobs/{}/{verb}", job.id);
    let can_retry = matches!(
        job.state,
        JobState::Failed | JobState::DeadLetter | JobState::Cancelled | JobState::Pending | JobState::Retrying
    );
    let can_cancel = matches!(job.state, JobState::Pending | JobState::Retrying);
    let body = html! {
        (layout::flash(q.done.as_deref()))
        p {
            @if can_retry { (layout::action(&op, &path("retry"), "Retry", "Run this job again now?", &[])) }
            @if can_cancel { (layout::action(&op, &path("cancel"), "Cancel", "Cancel this job? It will not run.", &[])) }
        }
        dl.facts {
            dt { "id" } dd { code { (job.id) } }
            dt { "kind" } dd { (job.kind) }
            dt { "queue" } dd { (job.queue) }
            dt { "state" } dd class={ "state-" (job.state.as_str()) } data-testid="job-state" { (job.state.as_str()) }
            dt { "attempt" } dd { (job.attempt) " of " (job.max_attempts) }
            dt { "org" } dd { (job.org.map(|o| o.to_string()).unwrap_or_else(|| "—".into())) }
            dt { "created" } dd { (job.created_at.to_rfc3339()) }
            dt { "run at" } dd { (job.run_at.to_rfc3339()) }
            dt { "started" } dd { (job.started_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "—".into())) }
            dt { "finished" } dd { (job.finished_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "—".into())) }
            dt { "lease" } dd {
                @match (&job.locked_by, job.lease_expires_at) {
                    (Some(w), Some(t)) => { "held by " (w) " until " (t.to_rfc3339()) }
                    _ => { "—" }
                }
            }
            dt { "dedupe key" } dd { (job.dedupe_key.as_deref().unwrap_or("—")) }
        }
        h2 { "Last error" }
        pre data-testid="job-error" { (job.last_error.as_deref().map(keel_ids::mask_email).unwrap_or_else(|| "—".into())) }
        h2 { "Arguments" }
        pre data-testid="job-args" { (arguments(&job)) }
    };
    Page { title: "Job", nav: "/console/jobs", live: true }.render(&op, body)
}

/// The arguments as a person reads them: `[sealed]` for each sealed value (never opened
/// here), pretty JSON with addresses masked. Escaped by the template like any text.
fn arguments(job: &Job) -> String {
    let shown = keel_queue::redact_payload(&job.payload);
    let pretty = serde_json::from_str::<serde_json::Value>(&shown)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(shown);
    keel_ids::mask_email(&pretty)
}

#[derive(Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
}

pub(crate) async fn retry(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    job_action(&state, &op, &headers, &raw, &f, Verb::Retry).await
}

pub(crate) async fn cancel(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    job_action(&state, &op, &headers, &raw, &f, Verb::Cancel).await
}

enum Verb {
    Retry,
    Cancel,
}

async fn job_action(
    state: &AppState,
    op: &Operator,
    headers: &HeaderMap,
    raw: &str,
    f: &ActionForm,
    verb: Verb,
) -> Response {
    if let Some(refused) = csrf::refusal(state, op, headers, &f.csrf) {
        return refused;
    }
    let Ok(id) = raw.parse::<JobId>() else {
        return layout::error_page(StatusCode::NOT_FOUND, "No such job", "That is not a job id (a UUID).");
    };
    let (result, done, action) = match verb {
        Verb::Retry => (state.queue.retry(id).await, "retried", "job.retry"),
        Verb::Cancel => (state.queue.cancel(id).await, "cancelled", "job.cancel"),
    };
    match result {
        Ok(job) => {
            let detail = serde_json::json!({"kind": job.kind, "state": job.state.as_str()});
            activity_log::record(state, op, action, &id.to_string(), detail).await;
            Redirect::to(&format!("/console/jobs/{id}?done={done}")).into_response()
        }
        Err(e) => action_refused(e),
    }
}

/// A refused verb (wrong state, unknown job) as a page with the store's own sentence.
fn action_refused(e: keel_queue::QueueError) -> Response {
    layout::error_page(StatusCode::CONFLICT, "Not done", &e.to_string())
}

pub(crate) async fn requeue_dead(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Form(f): Form<ActionForm>,
) -> Response {
    if let Some(refused) = csrf::refusal(&state, &op, &headers, &f.csrf) {
        return refused;
    }
    let kind = Some(f.kind.trim().to_owned()).filter(|k| !k.is_empty());
    match state.queue.requeue_dead(kind.clone()).await {
        Ok(report) => {
            let detail =
                serde_json::json!({"requeued": report.requeued, "skipped_duplicates": report.skipped_duplicates.len()});
            activity_log::record(&state, &op, "job.requeue_dead", kind.as_deref().unwrap_or("*"), detail).await;
            Redirect::to("/console/jobs?state=dead_letter&done=requeued").into_response()
        }
        Err(e) => action_refused(e),
    }
}
