//! `/console/jobs`: what is stuck, failing or dead, and why; a job's detail; and the verbs
//! (retry, cancel, requeue dead-lettered), each a confirmed POST with the CSRF proofs.

use crate::console::csrf;
use crate::console::gate::Operator;
use crate::console::layout::{self, Page};
use crate::extract::{param, query_pairs};
use crate::ops::actions;
use crate::ops::data::{self, JobQuery};
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use keel_queue::{JobId, JobState};
use maud::html;
use serde::Deserialize;
use serde_json::Value;

/// Jobs per page of the list.
const PAGE_SIZE: &str = "50";

/// A string field of a JSON document ("" when absent or not a string).
fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A field shown as text whatever its JSON type ("—" for null or absent).
fn shown(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => "—".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

pub(crate) async fn list(State(state): State<AppState>, op: Operator, RawQuery(raw): RawQuery) -> Response {
    let pairs = query_pairs(raw.as_deref());
    let get = |k: &str| param(&pairs, k).unwrap_or("").to_owned();
    let id = get("id");
    if !id.trim().is_empty() {
        return match id.trim().parse::<JobId>() {
            Ok(id) => Redirect::to(&format!("/console/jobs/{id}")).into_response(),
            Err(_) => render_list(
                &op,
                &pairs,
                &Value::Null,
                None,
                Some("id: not a job id (a UUID, like the ones in the list)"),
            ),
        };
    }
    let mut query_pairs = pairs.clone();
    query_pairs.retain(|(k, _)| k != "limit" && k != "done");
    query_pairs.push(("limit".into(), PAGE_SIZE.into()));
    let q = match JobQuery::parse(&query_pairs) {
        Ok(q) => q,
        Err(e) => return render_list(&op, &pairs, &Value::Null, None, Some(&e.detail)),
    };
    match data::jobs(&state, &q).await {
        Ok((jobs, next)) => render_list(&op, &pairs, &jobs, next, None),
        Err(e) => layout::api_error_page(&e),
    }
}

fn render_list(
    op: &Operator,
    pairs: &[(String, String)],
    jobs: &Value,
    next: Option<JobId>,
    error: Option<&str>,
) -> Response {
    let get = |k: &str| param(pairs, k).unwrap_or("").to_owned();
    let (state, kind, queue) = (get("state"), get("kind"), get("queue"));
    let older = next.map(|n| {
        format!("/console/jobs?state={}&kind={}&queue={}&before={n}", encode(&state), encode(&kind), encode(&queue))
    });
    let empty = Vec::new();
    let rows = jobs.as_array().unwrap_or(&empty);
    let body = html! {
        (layout::flash(param(pairs, "done")))
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form.filters method="get" action="/console/jobs" {
            label { "State"
                select name="state" {
                    option value="" selected[state.is_empty()] { "any" }
                    @for s in JobState::ALL {
                        option value=(s.as_str()) selected[state == s.as_str()] { (s.as_str()) }
                    }
                }
            }
            label { "Kind" input name="kind" value=(kind) placeholder="email.send"; }
            label { "Queue" input name="queue" value=(queue) placeholder="default"; }
            button type="submit" { "Filter" }
            label { "Job id" input name="id" placeholder="UUID"; }
            button type="submit" { "Open" }
        }
        @if state == JobState::DeadLetter.as_str() {
            p { (layout::action(op, "/console/jobs/requeue-dead", "Requeue these dead-lettered jobs", "Requeue every dead-lettered job shown by this filter's kind (all kinds when none)?", &[("kind", kind.as_str())])) }
        }
        @if rows.is_empty() {
            p.muted { "No jobs match." }
        } @else {
            table {
                thead { tr { th { "id" } th { "kind" } th { "queue" } th { "state" } th.num { "attempt" } th { "run at" } th { "last error" } } }
                tbody {
                    @for j in rows {
                        tr data-job=(text(j, "id")) {
                            td { a href={ "/console/jobs/" (text(j, "id")) } { code { (text(j, "id").chars().take(8).collect::<String>()) } } }
                            td { (text(j, "kind")) }
                            td { (text(j, "queue")) }
                            td class={ "state-" (text(j, "state")) } { (text(j, "state")) }
                            td.num { (shown(j, "attempt")) "/" (shown(j, "max_attempts")) }
                            td { (text(j, "run_at")) }
                            td { (text(j, "last_error")) }
                        }
                    }
                }
            }
        }
        @if let Some(href) = older { p.pager { a href=(href) rel="next" { "Older →" } } }
    };
    Page { title: "Jobs", nav: "/console/jobs", live: true }.render(op, body)
}

/// A query value in a link (the filters are plain names, but nothing typed may break the URL).
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) async fn detail(
    State(state): State<AppState>,
    op: Operator,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let Ok(id) = raw.parse::<JobId>() else {
        return layout::error_page(StatusCode::NOT_FOUND, "No such job", "That is not a job id (a UUID).");
    };
    let job = match data::job(&state, id).await {
        Ok(j) => j,
        Err(e) => return layout::api_error_page(&e),
    };
    let pairs = query_pairs(q.as_deref());
    let path = |verb: &str| format!("/console/jobs/{id}/{verb}");
    let st = text(&job, "state");
    let can_retry = matches!(st, "failed" | "cancelled" | "pending" | "retrying");
    let dead = st == "dead_letter";
    let can_cancel = matches!(st, "pending" | "retrying");
    let lease =
        match (job.get("locked_by").and_then(Value::as_str), job.get("lease_expires_at").and_then(Value::as_str)) {
            (Some(w), Some(t)) => format!("held by {w} until {t}"),
            _ => "—".into(),
        };
    let body = html! {
        (layout::flash(param(&pairs, "done")))
        p {
            @if can_retry { (layout::action(&op, &path("retry"), "Retry", "Run this job again now?", &[])) }
            @if dead {
                (layout::action(&op, &path("retry"), "Retry", "Run this job again now?", &[]))
                (layout::action(&op, &path("requeue"), "Requeue with fresh attempts", "Requeue this dead-lettered job?", &[]))
            }
            @if can_cancel { (layout::action(&op, &path("cancel"), "Cancel", "Cancel this job? It will not run.", &[])) }
        }
        dl.facts {
            dt { "id" } dd { code { (text(&job, "id")) } }
            dt { "kind" } dd { (text(&job, "kind")) }
            dt { "queue" } dd { (text(&job, "queue")) }
            dt { "state" } dd class={ "state-" (st) } data-testid="job-state" { (st) }
            dt { "attempt" } dd { (shown(&job, "attempt")) " of " (shown(&job, "max_attempts")) }
            dt { "org" } dd { (shown(&job, "org")) }
            dt { "created" } dd { (shown(&job, "created_at")) }
            dt { "run at" } dd { (shown(&job, "run_at")) }
            dt { "started" } dd { (shown(&job, "started_at")) }
            dt { "finished" } dd { (shown(&job, "finished_at")) }
            dt { "lease" } dd { (lease) }
            dt { "dedupe key" } dd { (shown(&job, "dedupe_key")) }
        }
        h2 { "Last error" }
        pre data-testid="job-error" { (shown(&job, "last_error")) }
        h2 { "Arguments" }
        pre data-testid="job-args" { (arguments(text(&job, "payload"))) }
    };
    Page { title: "Job", nav: "/console/jobs", live: true }.render(&op, body)
}

/// The arguments pretty-printed (the document already shows sealed values as `[sealed]` and
/// masks addresses). Escaped by the template like any text.
fn arguments(payload: &str) -> String {
    serde_json::from_str::<Value>(payload)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| payload.to_owned())
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

pub(crate) async fn requeue(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    job_action(&state, &op, &headers, &raw, &f, Verb::Requeue).await
}

enum Verb {
    Retry,
    Cancel,
    Requeue,
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
    let (result, done) = match verb {
        Verb::Retry => (actions::retry(state, &op.ops, id).await, "retried"),
        Verb::Cancel => (actions::cancel(state, &op.ops, id).await, "cancelled"),
        Verb::Requeue => (actions::requeue_one(state, &op.ops, id).await, "requeued"),
    };
    match result {
        Ok(_) => Redirect::to(&format!("/console/jobs/{id}?done={done}")).into_response(),
        Err(e) => layout::api_error_page(&e),
    }
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
    match actions::requeue_dead(&state, &op.ops, kind).await {
        Ok(_) => Redirect::to("/console/jobs?state=dead_letter&done=requeued").into_response(),
        Err(e) => layout::api_error_page(&e),
    }
}
