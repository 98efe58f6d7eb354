//! The security headers of every console answer, set with tower-http's `SetResponseHeader`
//! (overriding, so no handler can weaken them): a CSP that allows only the console's own
//! assets (no inline script or style, no third-party host, no framing), `nosniff`, and a
//! same-origin referrer so job ids in URLs never leave the site.

use crate::AppState;
use axum::http::{header, HeaderValue};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

/// `default-src 'self'`: scripts, styles, images and fetches from this origin only; charts
/// are inline SVG elements (not `data:` images), so `img-src` needs nothing more. `form-action
/// 'self'` keeps forms from posting elsewhere even if markup were injected; `base-uri 'none'`
/// stops a `<base>` from redirecting relative asset paths.
pub(crate) const CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
     form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'";

pub(super) fn secure(router: Router<AppState>) -> Router<AppState> {
    router
        .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
}
