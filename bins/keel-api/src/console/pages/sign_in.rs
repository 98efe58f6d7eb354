//! `/console/sign-in` and `/console/sign-out`: the same credentials, throttle and session
//! cookie as `/api/auth/sign-in` (both call `routes::start_session`), as an HTML form.

use crate::console::csrf;
use crate::console::layout;
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

pub(crate) async fn form(session: Option<axum::Extension<crate::auth::ResolvedSession>>) -> Response {
    if session.is_some() {
        return Redirect::to("/console").into_response();
    }
    render(StatusCode::OK, None, "")
}

fn render(status: StatusCode, error: Option<&str>, email: &str) -> Response {
    layout::bare(
        status,
        "Sign in",
        html! {
            p.muted { "The operator console. Sign in with your Keel account; it needs the operator grant." }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.stack method="post" action="/console/sign-in" {
                label { "Email" input type="email" name="email" value=(email) autocomplete="username" required; }
                label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { "Sign in" }
            }
        },
    )
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub(crate) async fn submit(State(state): State<AppState>, headers: HeaderMap, Form(f): Form<SignInForm>) -> Response {
    if let Some(refused) = csrf::origin_refusal(&state, &headers) {
        return refused;
    }
    match crate::routes::start_session(&state, &f.email, &f.password).await {
        Ok(started) => {
            let mut res = Redirect::to("/console").into_response();
            if let Ok(v) = HeaderValue::from_str(&started.cookie) {
                res.headers_mut().insert(header::SET_COOKIE, v);
            }
            res
        }
        Err(e) => {
            let mut res = render(e.status, Some(&sign_in_error(&e)), &f.email);
            if let Some(s) = e.retry_after_s {
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
            }
            res
        }
    }
}

/// The error's own sentence (it names the field or says to retry), as the API gives it.
fn sign_in_error(e: &ApiError) -> String {
    e.detail.clone()
}

#[derive(Deserialize)]
pub(crate) struct Csrf {
    #[serde(default)]
    csrf: String,
}

/// Any signed-in account may sign out (an org owner who reached the 403 page too), with the
/// same CSRF proofs as every console POST.
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    session: Option<axum::Extension<crate::auth::ResolvedSession>>,
    headers: HeaderMap,
    Form(f): Form<Csrf>,
) -> Response {
    let Some(axum::Extension(session)) = session else {
        return Redirect::to(crate::console::gate::SIGN_IN_PATH).into_response();
    };
    if let Some(refused) = csrf::origin_refusal(&state, &headers) {
        return refused;
    }
    if !state.session_signer.csrf_matches(&session.token, &f.csrf) {
        return layout::error_page(
            StatusCode::FORBIDDEN,
            "Request refused",
            "The form's security token is missing or stale. Reload the page and try again.",
        );
    }
    if let Err(e) = state.tenancy.end_session(&session.token).await {
        return super::failed("signing out", e);
    }
    let mut res = Redirect::to(crate::console::gate::SIGN_IN_PATH).into_response();
    if let Ok(v) = HeaderValue::from_str(&state.session_signer.clear_cookie()) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}
