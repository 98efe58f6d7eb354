//! `/console/limits`: each rate-limit policy, its quota, backend and key — is a limit what
//! is refusing callers, and which one.

use crate::console::gate::Operator;
use crate::console::layout::Page;
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use maud::html;

pub(crate) async fn page(State(state): State<AppState>, op: Operator) -> Response {
    let policies = &state.config.rate_limits;
    let body = html! {
        table {
            thead { tr { th { "policy" } th { "quota" } th { "backend" } th { "keyed by" } } }
            tbody {
                @for p in policies.iter() {
                    tr {
                        td { code { (p.name) } }
                        td { (p.quota.to_string()) }
                        td { (format!("{:?}", p.backend)) }
                        td { (format!("{:?}", p.key)) }
                    }
                }
            }
        }
    };
    Page { title: "Rate limits", nav: "/console/limits", live: true }.render(&op, body)
}
