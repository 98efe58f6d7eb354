//! The page shell every console page shares: head (the embedded stylesheet and script, no
//! inline code: the CSP forbids it), the navigation, the sign-out form, and the `main` element
//! that `console.js` refreshes in place when the page is marked live.

use super::assets::VERSION;
use super::gate::Operator;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

/// How often a live page refreshes itself (seconds), read by `console.js` from the page.
pub(super) const REFRESH_S: u32 = 5;

const NAV: &[(&str, &str)] = &[
    ("/console", "Overview"),
    ("/console/jobs", "Jobs"),
    ("/console/queues", "Queues & schedules"),
    ("/console/limits", "Rate limits"),
    ("/console/telemetry", "Telemetry"),
    ("/console/orgs", "Orgs & users"),
    ("/console/activity", "Activity"),
];

/// A page of the console. `live` pages refresh their `main` every [`REFRESH_S`] seconds.
pub(super) struct Page<'a> {
    pub(super) title: &'a str,
    /// The navigation entry to highlight (its path).
    pub(super) nav: &'a str,
    pub(super) live: bool,
}

impl Page<'_> {
    pub(super) fn render(&self, op: &Operator, body: Markup) -> Response {
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                (head(self.title))
                body {
                    header.top {
                        a.brand href="/console" { "Keel console" }
                        nav {
                            @for (path, label) in NAV {
                                a href=(path) aria-current=[(*path == self.nav).then_some("page")] { (label) }
                            }
                        }
                        form.signout method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(op.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                    main data-live=[self.live.then_some(REFRESH_S)] {
                        h1 { (self.title) }
                        (body)
                    }
                }
            }
        };
        html_response(StatusCode::OK, markup)
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Keel console" }
            link rel="stylesheet" href={ "/console/assets/console.css?v=" (VERSION) };
            script src={ "/console/assets/console.js?v=" (VERSION) } defer {}
        }
    }
}

/// A page outside the signed-in shell (sign-in, errors).
pub(super) fn bare(status: StatusCode, title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare { main { h1 { (title) } (body) } }
        }
    };
    html_response(status, markup)
}

/// An error as a page (403, 503, 404 of a job): a person reads these, not a client.
pub(crate) fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    bare(status, title, html! { p.detail { (detail) } p { a href="/console" { "Back to the console" } } })
}

/// An error of the operator API's data or actions as a page: its status and its sentence
/// (which names the field or says what to do; internal causes are logged, not shown).
pub(super) fn api_error_page(e: &crate::ApiError) -> Response {
    if e.status.is_server_error() {
        tracing::warn!(detail = %e.detail, internal = ?e.internal, "console: a page failed");
    }
    let title = if e.status.is_server_error() { "Could not load this page" } else { "Not done" };
    error_page(e.status, title, &e.detail)
}

/// The 403 of a signed-in account without the operator grant, with a way to sign out (to sign
/// in as someone else).
pub(super) fn not_an_operator(csrf: &str) -> Response {
    bare(
        StatusCode::FORBIDDEN,
        "Not an operator",
        html! {
            p.detail { "This console is for platform operators. Your account has no operator grant; an operator can give you one with "
                code { "keel-ops operator grant EMAIL" } "." }
            form method="post" action="/console/sign-out" {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Sign out" }
            }
        },
    )
}

pub(super) fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut res = (status, markup.into_string()).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // Pages show live operational data and carry a CSRF token: never cached.
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A form that POSTs one action with the session's CSRF token, and a confirmation question
/// `console.js` asks before it is sent.
pub(super) fn action(op: &Operator, path: &str, label: &str, confirm: &str, hidden: &[(&str, &str)]) -> Markup {
    html! {
        form.action method="post" action=(path) data-confirm=(confirm) {
            input type="hidden" name="csrf" value=(op.csrf);
            @for (name, value) in hidden {
                input type="hidden" name=(name) value=(value);
            }
            button type="submit" { (label) }
        }
    }
}

/// A flash line from the query string (`?done=…`), shown after an action's redirect. Only the
/// known keys are shown, by fixed text: a link cannot make the console say something else.
pub(super) fn flash(done: Option<&str>) -> Markup {
    let text = match done {
        Some("retried") => "Job retried: it is pending again.",
        Some("cancelled") => "Job cancelled.",
        Some("requeued") => "Requeued: pending again with fresh attempts.",
        Some("paused") => "Paused.",
        Some("resumed") => "Resumed.",
        Some("granted") => "Operator role granted.",
        Some("revoked") => "Operator role revoked.",
        _ => return html! {},
    };
    html! { p.flash role="status" { (text) } }
}
