//! [`Operator`]: the caller is a platform operator, by session cookie or by a bearer token with
//! the operator scope. Signed out: 401; signed in (or a token) without the grant or the scope:
//! 403. A state-changing request authenticated by the cookie must also carry the session's CSRF
//! token in `X-CSRF-Token`, and its `Origin`, when sent, must be this server's own.

use crate::auth::{bearer_token, ResolvedSession};
use crate::{ApiError, AppState};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method};
use keel_ids::UserId;
use keel_tenancy::TokenScope;
use std::net::IpAddr;

/// The header a cookie-authenticated POST carries its CSRF proof in (the console's forms send
/// the same value as a hidden field).
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// How the operator authenticated.
#[derive(Debug, Clone)]
pub(crate) enum OperatorVia {
    /// The browser session (its token, for the CSRF proof).
    Session(String),
    /// A bearer token with the operator scope.
    Token,
}

/// A platform operator, resolved for this request.
#[derive(Debug, Clone)]
pub(crate) struct Operator {
    pub(crate) user_id: UserId,
    pub(crate) via: OperatorVia,
    /// The connection's peer address (never a forwarding header): where actions came from.
    pub(crate) peer: Option<IpAddr>,
}

impl Operator {
    /// The session's CSRF token, for a caller signed in by cookie.
    pub(crate) fn csrf_token(&self, state: &AppState) -> Option<String> {
        match &self.via {
            OperatorVia::Session(t) => Some(state.session_signer.csrf_token(t)),
            OperatorVia::Token => None,
        }
    }
}

fn is_safe(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// `scheme://authority` of a URL (its path dropped): the form browsers send in `Origin`.
fn origin_of(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let end = rest.find('/').map_or(url.len(), |i| url.len() - rest.len() + i);
    Some(&url[..end])
}

/// `Origin`, when present, must name this server: its authority equal to `Host` (the browser
/// sets both; a cross-site page cannot forge either), or the configured public origin
/// (`KEEL_PUBLIC_URL`, for a proxy that rewrites `Host`). `null` (sandboxed or privacy-stripped
/// origins) and anything unparsable are refused.
fn origin_is_own(parts: &Parts, public_url: &str) -> bool {
    let Some(origin) = parts.headers.get(header::ORIGIN) else { return true };
    let Ok(origin) = origin.to_str() else { return false };
    let authority = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    if authority.is_empty() {
        return false;
    }
    let host = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok());
    host.is_some_and(|h| authority.eq_ignore_ascii_case(h))
        || origin_of(public_url).is_some_and(|p| p.eq_ignore_ascii_case(origin))
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = crate::routes::peer(&parts.extensions);
        let (user_id, via) = if let Some(s) = parts.extensions.get::<ResolvedSession>() {
            (s.user_id, OperatorVia::Session(s.token.clone()))
        } else if let Some(token) = bearer_token(&parts.headers) {
            let identity = state.tenancy.resolve_token_identity(&token).await.map_err(crate::error::from_tenancy)?;
            match identity {
                Some(i) if i.scope == TokenScope::Operator => {
                    // The rate limiter keys later requests of this token by user, as for Principal.
                    state.identities.put(&token, i.user_id);
                    (i.user_id, OperatorVia::Token)
                }
                Some(_) => {
                    return Err(ApiError::forbidden(
                        "this API token lacks the operator scope (issue one with `keel-ops token issue --user EMAIL --operator`)",
                    ))
                }
                None => return Err(ApiError::unauthorized("the API token is invalid or revoked")),
            }
        } else if parts.extensions.get::<crate::auth::SessionLookupFailed>().is_some() {
            return Err(ApiError::unavailable("sessions cannot be checked right now; retry shortly", 2));
        } else {
            return Err(ApiError::unauthorized("sign in, or send Authorization: Bearer <operator token>"));
        };
        // The grant is checked on every request, so a revocation takes effect at once for
        // sessions and tokens alike.
        if !state.tenancy.is_operator(user_id).await.map_err(crate::error::from_tenancy)? {
            return Err(ApiError::forbidden("the operator API is for platform operators (`keel-ops operator grant`)"));
        }
        if let OperatorVia::Session(token) = &via {
            if !is_safe(&parts.method) {
                if !origin_is_own(parts, &state.config.worker.public_url) {
                    return Err(ApiError::forbidden("cross-site request refused: Origin is not this server"));
                }
                let presented = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
                if !state.session_signer.csrf_matches(token, presented) {
                    return Err(ApiError::forbidden(
                        "missing or wrong X-CSRF-Token: send the session's CSRF token (GET /api/ops/me) with every POST",
                    ));
                }
            }
        }
        Ok(Operator { user_id, via, peer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(origin: Option<&str>, host: &str) -> Parts {
        let mut b = axum::http::Request::post("/api/ops/x").header(header::HOST, host);
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn origin_must_be_this_server_or_its_public_url() {
        let public = "https://ops.example.com/base";
        assert!(origin_is_own(&parts(None, "127.0.0.1:8080"), public), "no Origin: not a browser POST");
        assert!(origin_is_own(&parts(Some("http://127.0.0.1:8080"), "127.0.0.1:8080"), public));
        assert!(origin_is_own(&parts(Some("https://OPS.example.com"), "10.0.0.5:8080"), public), "behind a proxy");
        for bad in
            ["https://evil.example", "null", "", "https://ops.example.com.evil.example", "https://ops.example.com:444"]
        {
            assert!(!origin_is_own(&parts(Some(bad), "10.0.0.5:8080"), public), "{bad}");
        }
        assert_eq!(origin_of("https://a.example:8443/x/y"), Some("https://a.example:8443"));
        assert_eq!(origin_of("http://a.example"), Some("http://a.example"));
        assert_eq!(origin_of("nonsense"), None);
    }
}
