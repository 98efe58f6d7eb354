//! Who may see the console: a signed-in user with the platform operator grant (keel-tenancy's
//! operator table, beside the per-org roles). Signed out: 303 to the sign-in page; signed in
//! without the grant: 403; the session store unreachable: 503. Org roles play no part.

use super::layout;
use crate::auth::{ResolvedSession, SessionLookupFailed};
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

/// Where signed-out visitors are sent.
pub(super) const SIGN_IN_PATH: &str = "/console/sign-in";

/// A signed-in operator, with the CSRF token of their session for the page's forms.
#[derive(Debug, Clone)]
pub(crate) struct Operator {
    /// The session this request came with (the CSRF token is derived from it).
    pub(crate) session_token: String,
    /// What every form of the page carries in its `csrf` field.
    pub(crate) csrf: String,
    /// The same caller as the operator API sees it: what `ops::actions` take (and record).
    pub(crate) ops: crate::ops::Operator,
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(session) = parts.extensions.get::<ResolvedSession>().cloned() else {
            if parts.extensions.get::<SessionLookupFailed>().is_some() {
                return Err(unavailable());
            }
            return Err(Redirect::to(SIGN_IN_PATH).into_response());
        };
        match state.tenancy.is_operator(session.user_id).await {
            Ok(true) => Ok(Operator {
                csrf: state.session_signer.csrf_token(&session.token),
                ops: crate::ops::Operator {
                    user_id: session.user_id,
                    via: crate::ops::OperatorVia::Session(session.token.clone()),
                    peer: crate::routes::peer(&parts.extensions),
                },
                session_token: session.token,
            }),
            Ok(false) => Err(layout::not_an_operator(&state.session_signer.csrf_token(&session.token))),
            Err(e) => {
                tracing::warn!(error = %e, "operator grant lookup failed");
                Err(unavailable())
            }
        }
    }
}

fn unavailable() -> Response {
    let mut res = layout::error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "Sessions cannot be checked right now; this page retries on its own.",
    );
    res.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("2"));
    res
}
