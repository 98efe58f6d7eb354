//! `/console/telemetry`: which routes are slow and getting slower. The report `keel-ops
//! telemetry export` writes (top routes by p95/p99, top statements, connection snapshot,
//! verdict) for the last 7 days, from `ops::data::telemetry`, and p95/p99 of the slowest
//! routes per day as charts, from `ops::trend::route_trend`.
//! Not a live page: it is built on demand, under the request budget.

use crate::console::chart::{line_chart, Series, MAX_SERIES};
use crate::console::gate::Operator;
use crate::console::layout::{self, Page};
use crate::ops::data;
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use chrono::{Duration as ChronoDuration, Utc};
use maud::{html, Markup};
use serde_json::Value;

/// The report's window, and the chart's (one point per day).
const DAYS: u32 = 7;

pub(crate) async fn page(State(state): State<AppState>, op: Operator) -> Response {
    let report = match data::telemetry(&state, &[]).await {
        Ok(r) => r,
        Err(e) => return layout::api_error_page(&e),
    };
    let now = Utc::now();
    let trend = match crate::ops::trend::route_trend(&state.db, &[], now).await {
        Ok(t) => t,
        Err(e) => return layout::api_error_page(&e),
    };
    let charted: Vec<&Value> = trend["routes"].as_array().into_iter().flatten().take(MAX_SERIES).collect();
    // One point per day that has samples; a day's p99 is absent below the report's minimum.
    let line = |r: &Value, key: &str| Series {
        label: format!("{} {}", text(r, "kind"), text(r, "route")),
        points: r["points"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(|(d, p)| p[key].as_f64().map(|us| (d as f64, us / 1000.0)))
            .collect(),
    };
    let p95: Vec<Series> = charted.iter().map(|r| line(r, "p95_us")).collect();
    let p99: Vec<Series> = charted.iter().map(|r| line(r, "p99_us")).collect();
    let from = (now - ChronoDuration::days(i64::from(DAYS) - 1)).format("%m-%d").to_string();
    let to = now.format("%m-%d").to_string();
    let routes_section = &report["routes"];
    let statements = &report["statements"];
    let connections = &report["connections"];
    let body = html! {
        p.muted { "Last " (DAYS) " days · " (text(&report, "backend")) " " (text(&report, "server_version")) " · "
            (routes_section["total_samples"].as_u64().unwrap_or(0)) " samples over " (routes_section["routes_seen"].as_u64().unwrap_or(0)) " routes" }
        h2 { "Verdict" }
        p data-testid="verdict" { (text(&report["verdict"]["slo"], "text")) }
        h2 { "p95 per day, slowest routes" }
        (line_chart("p95 latency per day of the slowest routes", "ms", &p95, &from, &to))
        h2 { "p99 per day, slowest routes" }
        (line_chart("p99 latency per day of the slowest routes", "ms", &p99, &from, &to))
        h2 { "Slowest routes by p95" }
        (routes(&routes_section["top_by_p95"]))
        h2 { "Slowest routes by p99" }
        (routes(&routes_section["top_by_p99"]))
        h2 { "Statements" }
        @if text(statements, "status") == "available" {
            @if let Some(w) = statements["warning"].as_str() { p.muted { (w) } }
            table {
                thead { tr { th { "statement" } th.num { "calls" } th.num { "total ms" } th.num { "mean ms" } } }
                tbody {
                    @for s in statements["statements"].as_array().into_iter().flatten() {
                        tr {
                            td { code { (text(s, "query")) } }
                            td.num { (s["calls"].as_i64().unwrap_or(0)) }
                            td.num { (format!("{:.1}", s["total_ms"].as_f64().unwrap_or(0.0))) }
                            td.num { (format!("{:.2}", s["mean_ms"].as_f64().unwrap_or(0.0))) }
                        }
                    }
                }
            }
        } @else {
            p.muted { (text(statements, "reason")) (text(statements, "note")) " " (text(statements, "how_to_enable")) }
        }
        h2 { "Connections" }
        @if text(connections, "status") == "snapshot" {
            p { (connections["total"]) " of " (connections["max_connections"]) " connections: " (connections["active"]) " active, "
                (connections["idle"]) " idle, " (connections["idle_in_transaction"]) " idle in transaction, "
                (connections["waiting_on_locks"]) " waiting on locks." }
        } @else {
            p.muted { (text(connections, "note")) }
        }
    };
    Page { title: "Telemetry", nav: "/console/telemetry", live: false }.render(&op, body)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn routes(rows: &Value) -> Markup {
    let rows = rows.as_array().map(Vec::as_slice).unwrap_or(&[]);
    let ms = |v: &Value| v.as_f64().map(|us| format!("{:.1}", us / 1000.0));
    html! {
        @if rows.is_empty() { p.muted { "No route timing in this window." } } @else {
            table {
                thead { tr { th { "kind" } th { "route" } th.num { "samples" } th.num { "p50 ms" } th.num { "p95 ms" } th.num { "p99 ms" } } }
                tbody {
                    @for r in rows {
                        tr {
                            td { (text(r, "kind")) }
                            td { code { (text(r, "route")) } }
                            td.num { (r["samples"].as_u64().unwrap_or(0)) }
                            td.num { (ms(&r["p50_us"]).unwrap_or_default()) }
                            td.num { (ms(&r["p95_us"]).unwrap_or_default()) }
                            td.num { (ms(&r["p99_us"]).unwrap_or_else(|| "too few samples".into())) }
                        }
                    }
                }
            }
        }
    }
}
