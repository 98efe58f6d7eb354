//! `/console/limits`: is a rate limit what is refusing callers, and which one. Each policy's
//! quota, backend and key, its decisions and denials since this process started, denials over
//! time (sampled once per interval while operators watch), and the keys most recently denied
//! (addresses masked). Rendered from `ops::data::rate_limits`.

use crate::console::chart::{line_chart, Series, MAX_SERIES};
use crate::console::gate::Operator;
use crate::console::layout::{self, Page};
use crate::ops::data;
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use maud::html;
use serde_json::Value;

fn shown(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(crate) async fn page(State(state): State<AppState>, op: Operator) -> Response {
    let d = match data::rate_limits(&state).await {
        Ok(d) => d,
        Err(e) => return layout::api_error_page(&e),
    };
    let policies = d["policies"].as_array().cloned().unwrap_or_default();
    let samples = d["series"].as_array().cloned().unwrap_or_default();
    // Denials per sample interval (differences of the running totals) of the policies that
    // denied anything, at most MAX_SERIES of them.
    let mut series: Vec<Series> = Vec::new();
    for p in &policies {
        let name = p["policy"].as_str().unwrap_or("");
        let totals: Vec<f64> = samples
            .iter()
            .map(|s| {
                s["policies"]
                    .as_array()
                    .and_then(|ps| ps.iter().find(|x| x["policy"] == name))
                    .and_then(|x| x["denied"].as_f64())
                    .unwrap_or(0.0)
            })
            .collect();
        if totals.last().copied().unwrap_or(0.0) > 0.0 && series.len() < MAX_SERIES {
            let points = totals.windows(2).enumerate().map(|(i, w)| (i as f64, (w[1] - w[0]).max(0.0))).collect();
            series.push(Series { label: name.to_owned(), points });
        }
    }
    let at = |s: Option<&Value>| s.and_then(|s| s["at"].as_str()).and_then(|t| t.get(11..19)).unwrap_or("").to_owned();
    let body = html! {
        table {
            thead { tr { th { "policy" } th { "quota" } th { "backend" } th { "keyed by" } th.num { "allowed" } th.num { "denied" } th.num { "unavailable" } th { "recently denied keys" } } }
            tbody {
                @for p in &policies {
                    tr data-policy=(p["policy"].as_str().unwrap_or("")) {
                        td { code { (shown(&p["policy"])) } }
                        td { (shown(&p["quota"])) }
                        td { (shown(&p["backend"])) }
                        td { (shown(&p["key"])) }
                        td.num { (shown(&p["allowed"])) }
                        td.num { (shown(&p["denied"])) }
                        td.num { (shown(&p["unavailable"])) }
                        td { @for k in p["recently_denied_keys"].as_array().into_iter().flatten() { code { (shown(k)) } " " } }
                    }
                }
            }
        }
        p.muted { "Counts are this process's since it started; with several api processes each counts its own." }
        h2 { "Denials per interval" }
        @if series.is_empty() { p.muted { "No denials while this page has been watched." } } @else {
            (line_chart("rate-limit denials per sample interval", "denied", &series, &at(samples.first()), &at(samples.last())))
        }
    };
    Page { title: "Rate limits", nav: "/console/limits", live: true }.render(&op, body)
}
