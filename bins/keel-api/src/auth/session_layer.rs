//! The root session middleware: every protected surface passes through it. An existing, valid
//! session has its expiry slid forward and its cookie re-issued, so active users are never sent
//! back to the login page; requests without a session pass untouched (route-level auth decides).
//! Inbound webhook routes are deliberately not wrapped: they authenticate with signatures.

use super::cookie::cookie_value;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use keel_ids::{OrgId, UserId};
use std::time::Duration;

/// A session write (sliding the expiry) happens at most this often per session.
const SLIDE_EVERY: Duration = Duration::from_secs(300);

/// Put in the request extensions when the cookie named a live session.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedSession {
    pub(crate) token: String,
    pub(crate) user_id: UserId,
    pub(crate) active_org: Option<OrgId>,
}

/// Put in the request extensions when the session store could not be asked (database down):
/// authorization answers 503 instead of a misleading 401.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionLookupFailed;

pub(crate) async fn session_middleware(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(raw) = cookie_value(req.headers()).map(str::to_owned) else {
        return next.run(req).await;
    };
    let signer = &state.session_signer;
    let Some(cookie) = signer.decode(&raw) else {
        // Forged or from an old key: drop it so the browser stops sending it.
        let mut res = next.run(req).await;
        append_cookie(&mut res, &signer.clear_cookie());
        return res;
    };
    let ttl = state.config.session_ttl;
    match state.tenancy.resolve_session(&cookie.token, chrono::Utc::now(), ttl, SLIDE_EVERY).await {
        Ok(Some(info)) if info.user_id == cookie.user_id => {
            req.extensions_mut().insert(ResolvedSession {
                token: cookie.token.clone(),
                user_id: info.user_id,
                active_org: info.active_org,
            });
            let mut res = next.run(req).await;
            if info.refreshed {
                let max_age = (info.expires_at - chrono::Utc::now()).num_seconds();
                append_cookie(&mut res, &signer.set_cookie(&cookie.token, &info.user_id, max_age));
            }
            res
        }
        Ok(_) => {
            let mut res = next.run(req).await;
            append_cookie(&mut res, &signer.clear_cookie());
            res
        }
        Err(e) => {
            tracing::warn!(error = %e, "session lookup failed");
            req.extensions_mut().insert(SessionLookupFailed);
            next.run(req).await
        }
    }
}

fn append_cookie(res: &mut Response, value: &str) {
    // A handler that set its own session cookie (sign-in, sign-out) wins.
    if res.headers().contains_key(header::SET_COOKIE) {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}
