//! `/console/telemetry`: which routes are slow and getting slower. The report `keel-ops
//! telemetry export` writes (top routes by p95/p99, top statements, connection snapshot,
//! verdict) for the last 7 days, and p95/p99 of the slowest routes per day as a chart. Not a
//! live page: it is built on demand, under the request budget.

use crate::console::chart::{line_chart, Series, MAX_SERIES};
use crate::console::gate::Operator;
use crate::console::layout::Page;
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use chrono::{Duration as ChronoDuration, Utc};
use keel_telemetry::report::{ConnectionsSection, RouteRow, StatementsSection};
use keel_telemetry::{build_report, route_percentiles, PercentileEngine, ReportOptions};
use maud::{html, Markup};

/// The report's window, and the chart's (one point per day).
const DAYS: u32 = 7;

pub(crate) async fn page(State(state): State<AppState>, op: Operator) -> Response {
    let now = Utc::now();
    let opts = ReportOptions { days: DAYS, ..Default::default() };
    let report = match build_report(&state.db, &opts, now, &mut |_| {}).await {
        Ok(r) => r,
        Err(e) => return super::failed("building the telemetry report", e),
    };
    let chart_routes: Vec<&RouteRow> = report.routes.top_by_p95.iter().take(MAX_SERIES).collect();
    let mut p95 = Vec::new();
    let mut p99 = Vec::new();
    if !chart_routes.is_empty() {
        let mut s95: Vec<Series> = chart_routes.iter().map(|r| series(r, "p95")).collect();
        let mut s99: Vec<Series> = chart_routes.iter().map(|r| series(r, "p99")).collect();
        for d in 0..DAYS {
            let from = now - ChronoDuration::days(i64::from(DAYS - d));
            let to = from + ChronoDuration::days(1);
            let day = match route_percentiles(&state.db, from, to, PercentileEngine::Auto).await {
                Ok(day) => day,
                Err(e) => return super::failed("computing daily percentiles", e),
            };
            for (i, r) in chart_routes.iter().enumerate() {
                if let Some(p) = day.iter().find(|p| p.kind == r.kind && p.route == r.route) {
                    s95[i].points.push((f64::from(d), p.p95_us as f64 / 1000.0));
                    s99[i].points.push((f64::from(d), p.p99_us as f64 / 1000.0));
                }
            }
        }
        p95 = s95;
        p99 = s99;
    }
    let from = (now - ChronoDuration::days(i64::from(DAYS))).format("%m-%d").to_string();
    let to = now.format("%m-%d").to_string();
    let body = html! {
        p.muted { "Last " (DAYS) " days · " (report.backend) " " (report.server_version) " · "
            (report.routes.total_samples) " samples over " (report.routes.routes_seen) " routes" }
        h2 { "Verdict" }
        p data-testid="verdict" { (report.verdict.slo.text) }
        h2 { "p95 per day, slowest routes" }
        (line_chart("p95 latency per day of the slowest routes", "ms", &p95, &from, &to))
        h2 { "p99 per day, slowest routes" }
        (line_chart("p99 latency per day of the slowest routes", "ms", &p99, &from, &to))
        h2 { "Slowest routes by p95" }
        (routes(&report.routes.top_by_p95))
        h2 { "Slowest routes by p99" }
        (routes(&report.routes.top_by_p99))
        h2 { "Statements" }
        @match &report.statements {
            StatementsSection::Available { statements, warning, .. } => {
                @if let Some(w) = warning { p.muted { (w) } }
                table {
                    thead { tr { th { "statement" } th.num { "calls" } th.num { "total ms" } th.num { "mean ms" } } }
                    tbody {
                        @for s in statements {
                            tr { td { code { (s.query) } } td.num { (s.calls) } td.num { (format!("{:.1}", s.total_ms)) } td.num { (format!("{:.2}", s.mean_ms)) } }
                        }
                    }
                }
            }
            StatementsSection::Unavailable { reason, how_to_enable } => { p.muted { (reason) " " (how_to_enable) } }
            other => { p.muted { (serde_json::to_string(other).unwrap_or_default()) } }
        }
        h2 { "Connections" }
        @match &report.connections {
            ConnectionsSection::Snapshot(c) => {
                p { (c.total) " of " (c.max_connections) " connections: " (c.active) " active, " (c.idle) " idle, "
                    (c.idle_in_transaction) " idle in transaction, " (c.waiting_on_locks) " waiting on locks." }
            }
            ConnectionsSection::PostgresOnly { note } => { p.muted { (note) } }
        }
    };
    Page { title: "Telemetry", nav: "/console/telemetry", live: false }.render(&op, body)
}

fn series(r: &RouteRow, which: &str) -> Series {
    Series { label: format!("{} {} ({which})", r.kind.as_str(), r.route), points: Vec::new() }
}

fn routes(rows: &[RouteRow]) -> Markup {
    html! {
        @if rows.is_empty() { p.muted { "No route timing in this window." } } @else {
            table {
                thead { tr { th { "kind" } th { "route" } th.num { "samples" } th.num { "p50 ms" } th.num { "p95 ms" } th.num { "p99 ms" } } }
                tbody {
                    @for r in rows {
                        tr {
                            td { (r.kind.as_str()) }
                            td { code { (r.route) } }
                            td.num { (r.samples) }
                            td.num { (ms(r.p50_us)) }
                            td.num { (ms(r.p95_us)) }
                            td.num { (r.p99_us.map(ms).unwrap_or_else(|| "too few samples".into())) }
                        }
                    }
                }
            }
        }
    }
}

fn ms(us: i64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}
