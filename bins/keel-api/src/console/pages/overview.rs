//! `/console`: is the service up, is work flowing, and what is switched off — the first page
//! on-call opens. Rendered from the operator API's overview document (`ops::data::overview`):
//! the `/api/health` checks, the counts from the shared queue snapshot (one bounded query per
//! interval however many tabs are open, the same one `/metrics` and health read), throughput
//! and failures per minute over the last hour (cached per interval too), switches, pauses and
//! each scheduled task's last outcome.

use crate::console::chart::{line_chart, Series};
use crate::console::gate::Operator;
use crate::console::layout::{self, Page};
use crate::ops::data;
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use keel_queue::JobState;
use maud::html;
use serde_json::Value;

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

pub(crate) async fn page(State(state): State<AppState>, op: Operator) -> Response {
    let o = match data::overview(&state).await {
        Ok(o) => o,
        Err(e) => return layout::api_error_page(&e),
    };
    let health = &o["health"];
    let queue = &o["queue"];
    let throughput = list(&o["throughput"]);
    let per_minute = |key: &str| Series {
        label: key.to_owned(),
        points: throughput.iter().enumerate().map(|(i, m)| (i as f64, m[key].as_f64().unwrap_or(0.0))).collect(),
    };
    let series = [per_minute("completed"), per_minute("failed")];
    let first_minute = throughput.first().map(|m| text(m, "minute").get(11..16).unwrap_or("")).unwrap_or("");
    let last_minute = throughput.last().map(|m| text(m, "minute").get(11..16).unwrap_or("")).unwrap_or("");
    let switches = list(&o["switches"]);
    let paused_queues = list(&o["paused_queues"]);
    let paused_tasks = list(&o["paused_tasks"]);
    let tasks = list(&o["cron"]["tasks"]);
    let services: Vec<(&String, &Value)> =
        health["services"].as_object().map(|m| m.iter().collect()).unwrap_or_default();
    let body = html! {
        h2 { "Health" }
        p { "Overall: " strong class={ "status-" (text(health, "status")) } data-testid="health" { (text(health, "status")) } }
        @if !services.is_empty() {
            table {
                thead { tr { th { "check" } th { "status" } } }
                tbody {
                    @for (name, v) in &services {
                        @let status = v.as_str().map(str::to_owned).unwrap_or_else(|| text(v, "status").to_owned());
                        tr { td { (name) } td class={ "status-" (status) } { (status) } }
                    }
                }
            }
        }
        h2 { "Jobs by state" }
        div.cards {
            @for st in JobState::ALL {
                a.card href={ "/console/jobs?state=" (st.as_str()) } data-state=(st.as_str()) {
                    div.label { (st.as_str()) }
                    div.value data-testid={ "count-" (st.as_str()) } { (queue[st.as_str()].as_u64().unwrap_or(0)) }
                }
            }
        }
        p.muted {
            "Oldest pending job: " span data-testid="oldest-pending" { (format!("{:.1}", queue["oldest_pending_age_s"].as_f64().unwrap_or(0.0))) } " s · "
            "expired leases: " (queue["expired_leases"].as_u64().unwrap_or(0))
        }
        h2 { "Finished per minute, last hour" }
        (line_chart("jobs completed and failed per minute over the last hour", "jobs", &series, first_minute, last_minute))
        h2 { "Switched off" }
        @if switches.is_empty() && paused_queues.is_empty() && paused_tasks.is_empty() {
            p.muted { "Nothing: no incident switch is on, no queue or task is paused." }
        } @else {
            ul {
                @for s in switches { li { "Incident switch " code { (s.as_str().unwrap_or("")) } } }
                @for q in paused_queues { li { "Queue " code { (q.as_str().unwrap_or("")) } " paused" } }
                @for p in paused_tasks { li { "Task " code { (text(p, "task")) } " paused since " (text(p, "paused_at")) } }
            }
        }
        h2 { "Scheduled tasks: last run" }
        @if tasks.is_empty() {
            p.muted { "No task has run yet." }
        } @else {
            table {
                thead { tr { th { "task" } th { "started" } th { "outcome" } th.num { "ms" } th { "error" } } }
                tbody {
                    @for t in tasks {
                        @let run = &t["last_run"];
                        @let outcome = run["outcome"].as_str().unwrap_or("running");
                        tr {
                            td { (text(t, "task")) @if t["paused"].as_bool() == Some(true) { " (paused)" } }
                            td { (text(run, "started_at")) }
                            td class={ "run-" (outcome) } { (outcome) }
                            td.num { (run["duration_ms"].as_i64().map(|d| d.to_string()).unwrap_or_default()) }
                            td { (text(run, "error")) }
                        }
                    }
                }
            }
        }
    };
    Page { title: "Overview", nav: "/console", live: true }.render(&op, body)
}
