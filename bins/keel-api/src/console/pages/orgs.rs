//! `/console/orgs`: the org tree with each org's direct members and roles (read-only: an
//! operator gains no org's data or billing through it), and the operator grants, which are the
//! one thing changed here (grant by address, revoke), each recorded in the activity log.

use crate::console::gate::Operator;
use crate::console::layout::{self, Page};
use crate::console::{activity_log, csrf};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use keel_ids::Email;
use keel_tenancy::Org;
use maud::{html, Markup};
use serde::Deserialize;

/// Orgs shown; a deployment with more is better served by `keel-ops` and the database.
const MAX_ORGS: u32 = 500;

#[derive(Deserialize, Default)]
pub(crate) struct PageQuery {
    #[serde(default)]
    done: Option<String>,
}

pub(crate) async fn page(State(state): State<AppState>, op: Operator, Query(q): Query<PageQuery>) -> Response {
    let orgs = match state.tenancy.all_orgs(MAX_ORGS).await {
        Ok(o) => o,
        Err(e) => return super::failed("listing orgs", e),
    };
    let mut members = Vec::with_capacity(orgs.len());
    for o in &orgs {
        match state.tenancy.org_members(o.id).await {
            Ok(m) => members.push(m),
            Err(e) => return super::failed("listing members", e),
        }
    }
    let operators = match state.tenancy.operators().await {
        Ok(o) => o,
        Err(e) => return super::failed("listing operators", e),
    };
    let tree = Tree { orgs: &orgs, members: &members };
    let body = html! {
        (layout::flash(q.done.as_deref()))
        h2 { "Operators" }
        table {
            thead { tr { th { "operator" } th { "granted" } th {} } }
            tbody {
                @for g in &operators {
                    tr {
                        td { (g.email.to_string()) }
                        td { (g.granted_at.format("%Y-%m-%d %H:%M UTC")) }
                        td {
                            @if g.user_id != op.user_id {
                                (layout::action(&op, "/console/operators/revoke", "Revoke", "Revoke this operator grant?", &[("user_id", g.user_id.to_string().as_str())]))
                            }
                        }
                    }
                }
            }
        }
        form.filters method="post" action="/console/operators/grant" data-confirm="Grant the operator role to this account?" {
            input type="hidden" name="csrf" value=(op.csrf);
            label { "Account email" input type="email" name="email" required; }
            button type="submit" { "Grant operator" }
        }
        h2 { "Organizations" }
        @if orgs.is_empty() { p.muted { "No org yet." } }
        ul { @for root in orgs.iter().filter(|o| o.parent_id.is_none_or(|p| !orgs.iter().any(|x| x.id == p))) { (tree.node(root, 0)) } }
    };
    Page { title: "Orgs & users", nav: "/console/orgs", live: false }.render(&op, body)
}

struct Tree<'a> {
    orgs: &'a [Org],
    members: &'a [Vec<keel_tenancy::OrgMember>],
}

/// Nesting shown; deeper branches are listed flat (tenancy refuses trees deeper than 32).
const MAX_DEPTH: usize = 32;

impl Tree<'_> {
    fn node(&self, org: &Org, depth: usize) -> Markup {
        let i = self.orgs.iter().position(|o| o.id == org.id).unwrap_or(0);
        let children: Vec<&Org> = if depth < MAX_DEPTH {
            self.orgs.iter().filter(|o| o.parent_id == Some(org.id)).collect()
        } else {
            Vec::new()
        };
        html! {
            li {
                strong { (org.name) } " " span.muted { code { (org.id) } }
                @if let Some(ms) = self.members.get(i) {
                    @if !ms.is_empty() {
                        ul { @for m in ms { li { (m.email.to_string()) " · " (m.role.to_string()) } } }
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
    #[serde(default)]
    user_id: String,
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
    let email = match Email::parse(&f.email) {
        Ok(e) => e,
        Err(e) => return layout::error_page(StatusCode::UNPROCESSABLE_ENTITY, "Not done", &format!("email: {e}")),
    };
    let user = match state.tenancy.user_by_email(&email).await {
        Ok(Some(u)) => u.id,
        Ok(None) => return layout::error_page(StatusCode::NOT_FOUND, "Not done", "email: no account has that address"),
        Err(e) => return super::failed("looking up the account", e),
    };
    match state.tenancy.grant_operator(user, Some(op.user_id), chrono::Utc::now()).await {
        Ok(changed) => {
            activity_log::record(
                &state,
                &op,
                "operator.grant",
                &user.to_string(),
                serde_json::json!({"changed": changed}),
            )
            .await;
            Redirect::to("/console/orgs?done=granted").into_response()
        }
        Err(e) => super::failed("granting", e),
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
    let Ok(user) = keel_ids::UserId::parse(&f.user_id) else {
        return layout::error_page(StatusCode::UNPROCESSABLE_ENTITY, "Not done", "user_id: not a user id");
    };
    match state.tenancy.revoke_operator(user).await {
        Ok(changed) => {
            activity_log::record(
                &state,
                &op,
                "operator.revoke",
                &user.to_string(),
                serde_json::json!({"changed": changed}),
            )
            .await;
            Redirect::to("/console/orgs?done=revoked").into_response()
        }
        Err(e) => super::failed("revoking", e),
    }
}
