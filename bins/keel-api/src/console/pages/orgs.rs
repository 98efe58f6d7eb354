//! `/console/orgs`: Orgs & users.

use crate::console::gate::Operator;
use crate::console::layout::Page;
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use maud::html;

pub(crate) async fn page(State(_state): State<AppState>, op: Operator) -> Response {
    let body = html! { p.muted { "Not yet available." } };
    Page { title: "Orgs & users", nav: "/console/orgs", live: false }.render(&op, body)
}
