//! Sign-in and sign-out. Sign-in has a time budget (`KEEL_SIGN_IN_TIMEOUT`, 15 s): past it the
//! client gets 503 with `Retry-After` and a retryable message, never a hung request. Both also
//! run under the request budget of every `/api/auth/*` call (`KEEL_REQUEST_TIMEOUT`).
//!
//! Sign-in passes the per-account throttle first (`sign_in_failures`, see
//! [`crate::auth::SignInThrottle`]): past it the account answers 429 with `Retry-After` to every
//! client, known address or not; a success clears the account's failures.

use crate::auth::{Attempt, ResolvedSession};
use crate::extract::AppJson;
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use keel_ids::Email;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::openapi::{BadRequest, Invalid, RateLimited, TooLarge, Unauthorized, Unavailable};

/// Credentials for a browser session.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignIn {
    #[schema(format = Email)]
    email: String,
    #[schema(format = Password)]
    password: String,
}

/// A new session; its token is only in the `Set-Cookie` header.
#[derive(Serialize, ToSchema)]
pub(crate) struct SignedIn {
    #[schema(value_type = uuid::Uuid)]
    user_id: keel_ids::UserId,
    /// The org requests act in by default (the user's first); null for a user of no org.
    #[schema(value_type = Option<uuid::Uuid>)]
    active_org_id: Option<keel_ids::OrgId>,
    expires_at: chrono::DateTime<chrono::Utc>,
}

#[utoipa::path(
    post,
    path = "/api/auth/sign-in",
    tag = "auth",
    summary = "Create a browser session",
    request_body = SignIn,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = SignedIn,
            headers(("Set-Cookie" = String, description = "The signed session cookie (HttpOnly, Secure in production)"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 413, response = TooLarge),
        (status = 422, response = Invalid),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    )
)]
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    AppJson(body): AppJson<SignIn>,
) -> Result<Response, ApiError> {
    let started = start_session(&state, &body.email, &body.password).await?;
    let mut res = Json(SignedIn { user_id: started.user, active_org_id: started.org, expires_at: started.expires_at })
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&started.cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}

/// A session opened by [`start_session`], with the `Set-Cookie` value that carries it.
pub(crate) struct StartedSession {
    pub(crate) user: keel_ids::UserId,
    pub(crate) org: Option<keel_ids::OrgId>,
    pub(crate) expires_at: chrono::DateTime<chrono::Utc>,
    pub(crate) cookie: String,
}

/// The whole of sign-in (address check, per-account throttle, password, session, cookie)
/// under `KEEL_SIGN_IN_TIMEOUT`: `/api/auth/sign-in` and the console's sign-in form share it,
/// so both give the same session cookie under the same rules.
pub(crate) async fn start_session(state: &AppState, email: &str, password: &str) -> Result<StartedSession, ApiError> {
    let email = Email::parse(email).map_err(|e| ApiError::invalid("email", e.to_string()))?;
    let budget = state.config.sign_in_timeout;
    let throttle = &state.limits.sign_in_failures;
    let work = async {
        // Spent before the password is looked at, for every address alike (see the module doc).
        let attempt = throttle.attempt(&email).await;
        match attempt {
            Attempt::Allowed(_) | Attempt::Uncounted => {}
            Attempt::Throttled { retry_after } => {
                tracing::info!(email = %email, "sign-in refused: too many failures for this account");
                return Err(too_many_failures(retry_after));
            }
            Attempt::Unavailable { retry_after } => {
                return Err(ApiError::unavailable(
                    "sign-in is unavailable right now; please try again in a moment",
                    retry_after.as_secs().max(1),
                ));
            }
        }
        let Some(user) = state.tenancy.authenticate(&email, password).await.map_err(crate::error::from_tenancy)? else {
            tracing::info!(email = %email, "sign-in refused");
            throttle.failed(&email, &attempt);
            return Err(ApiError::unauthorized("email or password is wrong"));
        };
        // Only failures accumulate. Should the clear fail, the user is still signed in; the
        // leftover count fades at the policy's rate.
        if let Err(e) = throttle.clear(&email).await {
            tracing::warn!(email = %email, error = %e, "sign-in succeeded but its failure count was not cleared");
        }
        let first_org =
            state.tenancy.memberships(user).await.map_err(crate::error::from_tenancy)?.first().map(|m| m.org_id);
        let s = state
            .tenancy
            .create_session(user, first_org, state.config.session_ttl, chrono::Utc::now())
            .await
            .map_err(crate::error::from_tenancy)?;
        Ok((user, first_org, s))
    };
    let (user, org, session) = match tokio::time::timeout(budget, work).await {
        Ok(r) => r?,
        Err(_) => {
            // Milliseconds: a sub-second budget would log as 0 in seconds.
            tracing::warn!(budget_ms = budget.as_millis() as u64, "sign-in ran out of time");
            return Err(ApiError::unavailable("sign-in is taking too long right now; please try again in a moment", 5));
        }
    };
    let cookie = state.session_signer.set_cookie(&session.token, &user, state.config.session_ttl.as_secs() as i64);
    Ok(StartedSession { user, org, expires_at: session.expires_at, cookie })
}

/// 429 problem+json with `Retry-After` (whole seconds, rounded up).
fn too_many_failures(retry_after: std::time::Duration) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too many requests",
        "too many failed sign-ins for this account; try again later, or reset the password",
    );
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    e.retry_after_s = Some(secs.max(1));
    e
}

#[utoipa::path(
    post,
    path = "/api/auth/sign-out",
    tag = "auth",
    summary = "End the browser session (if any) and clear its cookie",
    security((), ("session" = [])),
    responses(
        (status = 204, description = "Signed out; the cookie is cleared",
            headers(("Set-Cookie" = String, description = "Clears the session cookie"))),
    )
)]
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    session: Option<Extension<ResolvedSession>>,
    _headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(Extension(s)) = session {
        state.tenancy.end_session(&s.token).await.map_err(crate::error::from_tenancy)?;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&state.session_signer.clear_cookie()) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}
