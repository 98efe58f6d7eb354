//! `/console/activity`: every operator action (who, what, to what, when, from where), newest
//! first, paged by keyset (`?before=<id of the last entry shown>`). Rendered from
//! `ops::data::activity`.

use crate::console::gate::Operator;
use crate::console::layout::{self, Page};
use crate::extract::query_pairs;
use crate::ops::data;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use maud::html;
use serde_json::Value;
use std::collections::HashMap;

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

pub(crate) async fn page(State(state): State<AppState>, op: Operator, RawQuery(raw): RawQuery) -> Response {
    let mut pairs = query_pairs(raw.as_deref());
    pairs.retain(|(k, _)| k == "before");
    let (entries, next) = match data::activity(&state, &pairs).await {
        Ok(p) => p,
        Err(e) => return layout::api_error_page(&e),
    };
    // Operators are few: one read names them all (addresses masked).
    let names: HashMap<String, String> = match data::operators(&state).await {
        Ok(v) => v
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| (text(g, "user_id").to_owned(), text(g, "email").to_owned()))
            .collect(),
        Err(e) => return layout::api_error_page(&e),
    };
    let empty = Vec::new();
    let rows = entries.as_array().unwrap_or(&empty);
    let body = html! {
        @if rows.is_empty() { p.muted { "No operator action recorded yet." } } @else {
            table {
                thead { tr { th { "when" } th { "operator" } th { "action" } th { "target" } th { "detail" } th { "from" } } }
                tbody {
                    @for e in rows {
                        @let who = text(e, "operator_id");
                        tr data-action=(text(e, "action")) {
                            td { (text(e, "at")) }
                            td { (names.get(who).map(String::as_str).unwrap_or(who)) }
                            td { code { (text(e, "action")) } }
                            td { code { (text(e, "target")) } }
                            td { code { (e["detail"].to_string()) } }
                            td { (e["remote_addr"].as_str().unwrap_or("—")) }
                        }
                    }
                }
            }
        }
        @if let Some(n) = next { p.pager { a href={ "/console/activity?before=" (n) } rel="next" { "Older →" } } }
    };
    Page { title: "Activity", nav: "/console/activity", live: true }.render(&op, body)
}
