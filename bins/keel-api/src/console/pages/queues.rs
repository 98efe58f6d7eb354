//! `/console/queues`: which queues and scheduled tasks are paused, pausing and resuming them,
//! and each task's runs from the execution log (status, duration, skipped ticks, error), so a
//! schedule that fails quietly shows as failing.

use crate::console::gate::Operator;
use crate::console::layout::{self, Page};
use crate::console::{activity_log, csrf};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use keel_queue::store::RunFilter;
use maud::html;
use serde::Deserialize;

/// Task runs shown (newest first).
const RUNS_SHOWN: u32 = 100;

#[derive(Deserialize, Default)]
pub(crate) struct PageQuery {
    #[serde(default)]
    done: Option<String>,
}

pub(crate) async fn page(State(state): State<AppState>, op: Operator, Query(q): Query<PageQuery>) -> Response {
    let paused = match state.queue.paused_queues().await {
        Ok(p) => p,
        Err(e) => return super::failed("reading the paused queues", e),
    };
    let pauses = match state.queue.cron_pauses().await {
        Ok(p) => p,
        Err(e) => return super::failed("reading the paused tasks", e),
    };
    let runs = match state.queue.cron_runs(RunFilter { task: None, limit: Some(RUNS_SHOWN) }).await {
        Ok(r) => r,
        Err(e) => return super::failed("reading the task runs", e),
    };
    let mut tasks: Vec<&str> = runs.iter().map(|r| r.task.as_str()).collect();
    tasks.sort_unstable();
    tasks.dedup();
    let body = html! {
        (layout::flash(q.done.as_deref()))
        h2 { "Queues" }
        @if paused.is_empty() { p.muted data-testid="no-paused-queues" { "No queue is paused." } }
        ul {
            @for name in &paused {
                li data-paused-queue=(name) {
                    code { (name) } " is paused · "
                    (layout::action(&op, &format!("/console/queues/{}/resume", encode(name)), "Resume", &format!("Resume queue {name}?"), &[]))
                }
            }
        }
        form.filters method="post" action="/console/queues/pause" data-confirm="Pause this queue for every worker?" {
            input type="hidden" name="csrf" value=(op.csrf);
            label { "Queue" input name="name" placeholder="default" required; }
            button type="submit" { "Pause queue" }
        }
        h2 { "Scheduled tasks" }
        @if pauses.is_empty() { p.muted { "No task is paused." } }
        ul {
            @for p in &pauses {
                li {
                    code { (p.task) } " paused since " (p.paused_at.format("%Y-%m-%d %H:%M UTC"))
                    @if let Some(by) = &p.paused_by { " by " (by) }
                    " · " (layout::action(&op, &format!("/console/tasks/{}/resume", encode(&p.task)), "Resume", &format!("Resume task {}?", p.task), &[]))
                }
            }
        }
        @for t in &tasks {
            @if !pauses.iter().any(|p| p.task == *t) {
                (layout::action(&op, &format!("/console/tasks/{}/pause", encode(t)), &format!("Pause {t}"), &format!("Pause task {t}? Its due runs will be skipped."), &[]))
            }
        }
        h2 { "Task runs" }
        @if runs.is_empty() { p.muted { "No task has run yet." } } @else {
            table {
                thead { tr { th { "task" } th { "started" } th.num { "duration" } th { "outcome" } th.num { "items" } th.num { "skipped ticks" } th { "error" } } }
                tbody {
                    @for r in &runs {
                        @let outcome = r.outcome.map(|o| o.as_str()).unwrap_or("running");
                        tr {
                            td { (r.task) }
                            td { (r.started_at.format("%Y-%m-%d %H:%M:%S")) }
                            td.num { (r.finished_at.map(|f| format!("{} ms", (f - r.started_at).num_milliseconds())).unwrap_or_default()) }
                            td class={ "run-" (outcome) } { (outcome) }
                            td.num { (r.items) }
                            td.num { (r.skipped_ticks) }
                            td { (r.error.as_deref().map(keel_ids::mask_email).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
    };
    Page { title: "Queues & schedules", nav: "/console/queues", live: true }.render(&op, body)
}

/// A queue or task name as one path segment (names are plain, but a `/` must not split it).
fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

pub(crate) async fn pause_queue_form(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Form(f): Form<ActionForm>,
) -> Response {
    let name = f.name.trim().to_owned();
    verb(&state, &op, &headers, &f.csrf, Verb::PauseQueue, name).await
}

pub(crate) async fn pause_queue(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    verb(&state, &op, &headers, &f.csrf, Verb::PauseQueue, name).await
}

pub(crate) async fn resume_queue(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    verb(&state, &op, &headers, &f.csrf, Verb::ResumeQueue, name).await
}

pub(crate) async fn pause_task(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    verb(&state, &op, &headers, &f.csrf, Verb::PauseTask, name).await
}

pub(crate) async fn resume_task(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    verb(&state, &op, &headers, &f.csrf, Verb::ResumeTask, name).await
}

#[derive(Clone, Copy)]
enum Verb {
    PauseQueue,
    ResumeQueue,
    PauseTask,
    ResumeTask,
}

async fn verb(state: &AppState, op: &Operator, headers: &HeaderMap, token: &str, v: Verb, name: String) -> Response {
    if let Some(refused) = csrf::refusal(state, op, headers, token) {
        return refused;
    }
    if name.is_empty() || name.len() > 200 {
        return layout::error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not done",
            "name: give the queue or task name (1 to 200 characters)",
        );
    }
    let by = Some(format!("console:{}", op.user_id));
    let target = name.clone();
    let (r, done, action) = match v {
        Verb::PauseQueue => (state.queue.pause_queue(name, by).await.map(|_| true), "paused", "queue.pause"),
        Verb::ResumeQueue => (state.queue.resume_queue(name).await, "resumed", "queue.resume"),
        Verb::PauseTask => (state.queue.cron_pause(name, by).await.map(|_| true), "paused", "task.pause"),
        Verb::ResumeTask => (state.queue.cron_resume(name).await, "resumed", "task.resume"),
    };
    match r {
        Ok(changed) => {
            activity_log::record(state, op, action, &target, serde_json::json!({"changed": changed})).await;
            Redirect::to(&format!("/console/queues?done={done}")).into_response()
        }
        Err(e) => layout::error_page(StatusCode::CONFLICT, "Not done", &e.to_string()),
    }
}
