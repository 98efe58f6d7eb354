//! `/console/activity`: every operator action (who, what, to what, when, from where), newest
//! first, paged by keyset (`?before=<id of the last entry shown>`).

use crate::console::gate::Operator;
use crate::console::layout::Page;
use crate::AppState;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use std::collections::HashMap;

/// Entries per page.
const PAGE_SIZE: u32 = 100;

#[derive(Deserialize, Default)]
pub(crate) struct PageQuery {
    #[serde(default)]
    before: Option<String>,
}

pub(crate) async fn page(State(state): State<AppState>, op: Operator, Query(q): Query<PageQuery>) -> Response {
    let before = q.before.as_deref().and_then(|b| uuid::Uuid::parse_str(b).ok());
    let entries = match state.tenancy.operator_actions(before, PAGE_SIZE).await {
        Ok(e) => e,
        Err(e) => return super::failed("reading the activity log", e),
    };
    // Operators are few: one lookup names them all (masked addresses).
    let names: HashMap<keel_ids::UserId, String> = match state.tenancy.operators().await {
        Ok(ops) => ops.into_iter().map(|g| (g.user_id, g.email.to_string())).collect(),
        Err(e) => return super::failed("reading the operators", e),
    };
    let body = html! {
        @if entries.is_empty() { p.muted { "No operator action recorded yet." } } @else {
            table {
                thead { tr { th { "when" } th { "operator" } th { "action" } th { "target" } th { "detail" } th { "from" } } }
                tbody {
                    @for e in &entries {
                        tr data-action=(e.action) {
                            td { (e.at.format("%Y-%m-%d %H:%M:%S UTC")) }
                            td { (names.get(&e.operator_id).cloned().unwrap_or_else(|| e.operator_id.to_string())) }
                            td { code { (e.action) } }
                            td { code { (e.target) } }
                            td { code { (e.detail.to_string()) } }
                            td { (e.remote_addr.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
            @if entries.len() == PAGE_SIZE as usize {
                @if let Some(last) = entries.last() {
                    p.pager { a href={ "/console/activity?before=" (last.id) } { "Older →" } }
                }
            }
        }
    };
    Page { title: "Activity", nav: "/console/activity", live: true }.render(&op, body)
}
