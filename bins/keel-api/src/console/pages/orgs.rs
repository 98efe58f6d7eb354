//! `/console/orgs`: the org tree with each org's direct members and roles (read-only: an
//! operator gains no org's data or billing through it), and the operator grants, which are the
//! one thing changed here (grant by address, revoke), each recorded in the activity log.

use crate::console::csrf;
use crate::console::gate::Operator;
use crate::console::layout::{self, Page};
use crate::ops::actions;
use crate::ops::data;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use keel_ids::OrgId;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

#[derive(Deserialize, Default)]
pub(crate) struct PageQuery {
    #[serde(default)]
    done: Option<String>,
}

pub(crate) async fn page(State(state): State<AppState>, op: Operator, Query(q): Query<PageQuery>) -> Response {
    let orgs = match data::orgs(&state).await {
        Ok(o) => o,
        Err(e) => return layout::api_error_page(&e),
    };
    let list: Vec<Value> = orgs["orgs"].as_array().cloned().unwrap_or_default();
    let mut members = HashMap::new();
    for o in &list {
        let Some(id) = o["id"].as_str().and_then(|i| OrgId::parse(i).ok()) else { continue };
        match data::org_members(&state, id).await {
            Ok(m) => members.insert(id.to_string(), m["members"].as_array().cloned().unwrap_or_default()),
            Err(e) => return layout::api_error_page(&e),
        };
    }
    let operators = match data::operators(&state).await {
        Ok(o) => o.as_array().cloned().unwrap_or_default(),
        Err(e) => return layout::api_error_page(&e),
    };
    let tree = Tree { orgs: &list, members: &members };
    let is_root = |o: &Value| o["parent_id"].is_null() || !list.iter().any(|x| x["id"] == o["parent_id"]);
    let body = html! {
        (layout::flash(q.done.as_deref()))
        h2 { "Operators" }
        table {
            thead { tr { th { "operator" } th { "granted" } } }
            tbody {
                @for g in &operators { tr { td { (text(g, "email")) } td { (text(g, "granted_at")) } } }
            }
        }
        form.filters method="post" action="/console/operators/grant" data-confirm="Grant the operator role to this account?" {
            input type="hidden" name="csrf" value=(op.csrf);
            label { "Account email" input type="email" name="email" required; }
            button type="submit" { "Grant operator" }
        }
        form.filters method="post" action="/console/operators/revoke" data-confirm="Revoke this account's operator role?" {
            input type="hidden" name="csrf" value=(op.csrf);
            label { "Account email" input type="email" name="email" required; }
            button type="submit" { "Revoke operator" }
        }
        h2 { "Organizations" }
        @if list.is_empty() { p.muted { "No org yet." } }
        @if orgs["truncated"].as_bool() == Some(true) { p.muted { "Only the first orgs are shown." } }
        ul { @for root in list.iter().filter(|o| is_root(o)) { (tree.node(root, 0)) } }
    };
    Page { title: "Orgs & users", nav: "/console/orgs", live: false }.render(&op, body)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

struct Tree<'a> {
    orgs: &'a [Value],
    members: &'a HashMap<String, Vec<Value>>,
}

/// Nesting shown; deeper branches are not drawn (tenancy refuses trees deeper than 32).
const MAX_DEPTH: usize = 32;

impl Tree<'_> {
    fn node(&self, org: &Value, depth: usize) -> Markup {
        let id = text(org, "id");
        let children: Vec<&Value> = if depth < MAX_DEPTH {
            self.orgs.iter().filter(|o| o["parent_id"].as_str() == Some(id)).collect()
        } else {
            Vec::new()
        };
        html! {
            li {
                strong { (text(org, "name")) } " " span.muted { code { (id) } }
                @if let Some(ms) = self.members.get(id) {
                    @if !ms.is_empty() {
                        ul { @for m in ms { li { (text(m, "email")) " · " (text(m, "role")) } } }
                    }
                }
                @if !children.is_empty() { ul { @for c in children { (self.node(c, depth + 1)) } } }
            }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct GrantForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

pub(crate) async fn grant(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Form(f): Form<GrantForm>,
) -> Response {
    if let Some(refused) = csrf::refusal(&state, &op, &headers, &f.csrf) {
        return refused;
    }
    match actions::grant(&state, &op.ops, &f.email).await {
        Ok(_) => Redirect::to("/console/orgs?done=granted").into_response(),
        Err(e) => layout::api_error_page(&e),
    }
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Form(f): Form<GrantForm>,
) -> Response {
    if let Some(refused) = csrf::refusal(&state, &op, &headers, &f.csrf) {
        return refused;
    }
    match actions::revoke(&state, &op.ops, &f.email).await {
        Ok(_) => Redirect::to("/console/orgs?done=revoked").into_response(),
        Err(e) => layout::api_error_page(&e),
    }
}
