//! `/console`: is the service up, is work flowing, and what is switched off — the first page
//! on-call opens. Health is the same check as `/api/health`; the counts come from the shared
//! queue snapshot (one bounded query per interval however many tabs are open, the same one
//! `/metrics` and health read).

use crate::console::gate::Operator;
use crate::console::layout::Page;
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use keel_queue::store::RunFilter;
use keel_queue::JobState;
use maud::html;

pub(crate) async fn page(State(state): State<AppState>, op: Operator) -> Response {
    let health = state.health.check_with_sections().await;
    let snapshot = state.queue_snapshot.get().await;
    let pauses = match state.queue.cron_pauses().await {
        Ok(p) => p,
        Err(e) => return super::failed("reading the paused tasks", e),
    };
    let runs = match state.queue.cron_runs(RunFilter { task: None, limit: Some(200) }).await {
        Ok(r) => r,
        Err(e) => return super::failed("reading the task runs", e),
    };
    // The newest run of each task (the log is newest first).
    let mut last: Vec<&keel_queue::store::CronRun> = Vec::new();
    for r in &runs {
        if !last.iter().any(|l| l.task == r.task) {
            last.push(r);
        }
    }
    let switches = state.config.switches.current();
    let active: Vec<&str> = switches.active().collect();
    let body = html! {
        h2 { "Health" }
        p { "Overall: " strong class={ "status-" (health.status().as_str()) } data-testid="health" { (health.status().as_str()) } }
        table {
            thead { tr { th { "check" } th { "status" } th { "detail" } th.num { "ms" } } }
            tbody {
                @for o in health.outcomes() {
                    tr {
                        td { (o.name) }
                        td class={ "status-" (o.status.as_str()) } { (o.status.as_str()) }
                        td { (o.detail.unwrap_or("")) }
                        td.num { (o.elapsed.as_millis()) }
                    }
                }
            }
        }
        h2 { "Jobs by state" }
        @match &snapshot {
            Ok(s) => {
                div.cards {
                    @for st in JobState::ALL {
                        a.card href={ "/console/jobs?state=" (st.as_str()) } data-state=(st.as_str()) {
                            div.label { (st.as_str()) }
                            div.value data-testid={ "count-" (st.as_str()) } { (s.counts.get(st)) }
                        }
                    }
                }
                p.muted {
                    "Oldest pending job: " span data-testid="oldest-pending" { (format!("{:.1}", s.oldest_pending_age_s)) } " s · "
                    "expired leases: " (s.expired_leases) " · snapshot taken " (s.taken_at.format("%H:%M:%S UTC"))
                }
            }
            Err(e) => { p.error { "The queue snapshot failed: " (e.to_string()) } }
        }
        h2 { "Switched off" }
        @let paused_queues = snapshot.as_ref().map(|s| s.paused_queues.clone()).unwrap_or_default();
        @if active.is_empty() && pauses.is_empty() && paused_queues.is_empty() {
            p.muted { "Nothing: no incident switch is on, no queue or task is paused." }
        } @else {
            ul {
                @for s in &active { li { "Incident switch " code { (s) } } }
                @for q in &paused_queues { li { "Queue " code { (q) } " paused" } }
                @for p in &pauses { li { "Task " code { (p.task) } " paused since " (p.paused_at.format("%Y-%m-%d %H:%M UTC")) } }
            }
        }
        h2 { "Scheduled tasks: last run" }
        @if last.is_empty() {
            p.muted { "No task has run yet." }
        } @else {
            table {
                thead { tr { th { "task" } th { "started" } th { "outcome" } th { "error" } } }
                tbody {
                    @for r in &last {
                        @let outcome = r.outcome.map(|o| o.as_str()).unwrap_or("running");
                        tr {
                            td { (r.task) }
                            td { (r.started_at.format("%Y-%m-%d %H:%M:%S")) }
                            td class={ "run-" (outcome) } { (outcome) }
                            td { (r.error.as_deref().map(keel_ids::mask_email).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
    };
    Page { title: "Overview", nav: "/console", live: true }.render(&op, body)
}
