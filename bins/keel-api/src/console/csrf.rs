//! CSRF protection of every console POST, two proofs that a cross-site page cannot produce:
//!
//! 1. **The token.** Each form carries `csrf`, an HMAC of the session token under the server's
//!    cookie key ([`crate::auth::SessionSigner::csrf_token`]), compared in constant time. A
//!    page on another site cannot read it (same-origin policy), and it changes with the session.
//! 2. **The origin.** When the browser sends `Origin` (all current browsers do on POST), its
//!    host and port must equal this request's `Host`, or it must be the origin of
//!    `KEEL_PUBLIC_URL` (a proxy that rewrites `Host`): the operator API's rule. `Origin: null`
//!    (sandboxed frames, some redirects) is refused. `Sec-Fetch-Site: cross-site` is refused too. An absent `Origin`
//!    (older browsers, some privacy settings) is accepted on the strength of the token alone,
//!    which is always required. The scheme is not compared: behind a TLS-terminating proxy the
//!    server cannot know it without trusting a forwarding header, which it never does.
//!
//! The sign-in form has no session yet, so it has no token: it gets the origin checks only
//! (enough against login CSRF, where a foreign page signs the victim into the attacker's account).
//! The session cookie stays `SameSite=Lax`, a third layer for browsers that honour it.

use super::gate::Operator;
use super::layout;
use crate::AppState;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;

/// The 403 page for a console POST without both proofs (see the module doc); `None` when it
/// has them.
pub(super) fn refusal(state: &AppState, op: &Operator, headers: &HeaderMap, token: &str) -> Option<Response> {
    if let Some(refused) = origin_refusal(state, headers) {
        return Some(refused);
    }
    if state.session_signer.csrf_matches(&op.session_token, token) {
        None
    } else {
        tracing::info!("console POST refused: missing or wrong CSRF token");
        Some(refused("The form's security token is missing or stale. Reload the page and try again."))
    }
}

/// The origin checks alone (the sign-in form): the 403 page when they fail.
pub(super) fn origin_refusal(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    same_origin(headers, &state.config.worker.public_url).err().map(|r| *r)
}

/// `scheme://authority` of a URL, the form browsers send in `Origin`.
fn origin_of(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let end = rest.find('/').map_or(url.len(), |i| url.len() - rest.len() + i);
    Some(&url[..end])
}

fn same_origin(headers: &HeaderMap, public_url: &str) -> Result<(), Box<Response>> {
    if headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site")) {
        tracing::info!("console POST refused: cross-site (Sec-Fetch-Site)");
        return Err(Box::new(refused("Cross-site requests cannot change anything here.")));
    }
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let authority = origin.to_str().ok().and_then(|o| o.strip_prefix("https://").or_else(|| o.strip_prefix("http://")));
    let public = origin.to_str().ok().is_some_and(|o| origin_of(public_url).is_some_and(|p| p.eq_ignore_ascii_case(o)));
    match (authority, host) {
        (Some(a), Some(h)) if a.eq_ignore_ascii_case(h) => Ok(()),
        _ if public => Ok(()),
        _ => {
            tracing::info!("console POST refused: Origin is not this server");
            Err(Box::new(refused("Cross-site requests cannot change anything here.")))
        }
    }
}

fn refused(why: &str) -> Response {
    layout::error_page(StatusCode::FORBIDDEN, "Request refused", why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn same_origin_t(h: &HeaderMap) -> Result<(), Box<Response>> {
        same_origin(h, "https://ops.example.com/base")
    }

    #[test]
    fn origin_must_be_this_host_when_present() {
        let host = ("host", "127.0.0.1:8080");
        assert!(same_origin_t(&headers(&[host])).is_ok(), "absent Origin: the token decides");
        assert!(same_origin_t(&headers(&[host, ("origin", "http://127.0.0.1:8080")])).is_ok());
        assert!(same_origin_t(&headers(&[host, ("origin", "https://127.0.0.1:8080")])).is_ok());
        for bad in ["http://evil.example", "http://127.0.0.1:8081", "null", "http://127.0.0.1:8080.evil.example", ""] {
            let h = headers(&[host, ("origin", bad)]);
            assert_eq!(same_origin_t(&h).unwrap_err().status(), 403, "{bad}");
        }
        assert!(same_origin_t(&headers(&[("origin", "http://127.0.0.1:8080")])).is_err(), "no Host to compare");
        let cross = headers(&[host, ("sec-fetch-site", "cross-site")]);
        assert_eq!(same_origin_t(&cross).unwrap_err().status(), 403);
        assert!(same_origin_t(&headers(&[host, ("sec-fetch-site", "same-origin")])).is_ok());
        // Behind a proxy that rewrites Host: the public URL's origin is this server's too.
        assert!(same_origin_t(&headers(&[("host", "10.0.0.5:8080"), ("origin", "https://ops.example.com")])).is_ok());
        let other_port = headers(&[("host", "10.0.0.5:8080"), ("origin", "https://ops.example.com:444")]);
        assert!(same_origin_t(&other_port).is_err());
    }
}
