//! `/console/queues`: which queues and scheduled tasks are paused, pausing and resuming them,
//! and each task's runs from the execution log (status, duration, skipped ticks, error), so a
//! schedule that fails quietly shows as failing.

use crate::console::csrf;
use crate::console::gate::Operator;
use crate::console::layout::{self, Page};
use crate::ops::actions;
use crate::ops::data;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;
use serde_json::Value;

/// Task runs shown (newest first).
const RUNS_SHOWN: &str = "100";

#[derive(Deserialize, Default)]
pub(crate) struct PageQuery {
    #[serde(default)]
    done: Option<String>,
}

pub(crate) async fn page(State(state): State<AppState>, op: Operator, Query(q): Query<PageQuery>) -> Response {
    // Read fresh, not from the shared snapshot: right after a pause or resume the page must
    // show it (one small read of the pause table).
    let paused = match state.queue.paused_queues().await {
        Ok(p) => p,
        Err(e) => return layout::api_error_page(&data::qerr(e)),
    };
    let cron = match data::cron_tasks(&state).await {
        Ok(c) => c,
        Err(e) => return layout::api_error_page(&e),
    };
    let limit = [("limit".to_owned(), RUNS_SHOWN.to_owned())];
    let runs = match data::cron_runs(&state, &limit).await {
        Ok(r) => r.as_array().cloned().unwrap_or_default(),
        Err(e) => return layout::api_error_page(&e),
    };
    let pauses = cron["pauses"].as_array().cloned().unwrap_or_default();
    let tasks = cron["tasks"].as_array().cloned().unwrap_or_default();
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
        @if tasks.is_empty() && pauses.is_empty() { p.muted { "No task has run yet." } }
        ul {
            @for p in &pauses {
                @let task = text(p, "task");
                li data-paused-task=(task) {
                    code { (task) } " paused since " (text(p, "paused_at"))
                    " · " (layout::action(&op, &format!("/console/tasks/{}/resume", encode(task)), "Resume", &format!("Resume task {task}?"), &[]))
                }
            }
            @for t in &tasks {
                @let task = text(t, "task");
                @if t["paused"].as_bool() != Some(true) {
                    li {
                        code { (task) } " · last run " (t["last_run"]["outcome"].as_str().unwrap_or("running")) " · "
                        (layout::action(&op, &format!("/console/tasks/{}/pause", encode(task)), "Pause", &format!("Pause task {task}? Its due runs will be skipped."), &[]))
                    }
                }
            }
        }
        h2 { "Task runs" }
        @if runs.is_empty() { p.muted { "No task has run yet." } } @else {
            table {
                thead { tr { th { "task" } th { "started" } th { "finished" } th { "outcome" } th.num { "items" } th.num { "skipped ticks" } th { "error" } } }
                tbody {
                    @for r in &runs {
                        @let outcome = r["outcome"].as_str().unwrap_or("running");
                        tr {
                            td { (text(r, "task")) }
                            td { (text(r, "started_at")) }
                            td { (text(r, "finished_at")) }
                            td class={ "run-" (outcome) } { (outcome) }
                            td.num { (r["items"].as_u64().unwrap_or(0)) }
                            td.num { (r["skipped_ticks"].as_u64().unwrap_or(0)) }
                            td { (text(r, "error")) }
                        }
                    }
                }
            }
        }
    };
    Page { title: "Queues & schedules", nav: "/console/queues", live: true }.render(&op, body)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
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
    let r = match v {
        Verb::PauseQueue => actions::queue_pause(state, &op.ops, &name, true).await,
        Verb::ResumeQueue => actions::queue_pause(state, &op.ops, &name, false).await,
        Verb::PauseTask => actions::task_pause(state, &op.ops, &name, true).await,
        Verb::ResumeTask => actions::task_pause(state, &op.ops, &name, false).await,
    };
    let done = if matches!(v, Verb::PauseQueue | Verb::PauseTask) { "paused" } else { "resumed" };
    match r {
        Ok(_) => Redirect::to(&format!("/console/queues?done={done}")).into_response(),
        Err(e) => layout::api_error_page(&e),
    }
}
