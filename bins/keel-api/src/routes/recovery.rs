//! Password recovery through the queue. `forgot-password` does the same work whatever the
//! address: normalise it, apply the per-address limit, enqueue one `auth.password_reset` job
//! (the address sealed, deduped by a keyed hash of it) and answer 202. It never looks the
//! account up: the worker does that, mints the token and mails the link, so neither the answer,
//! its timing nor the statements run tell whether an account exists, and the link is never
//! stored anywhere but in the mail. The address is masked in every log line. `reset-password`
//! uses the single-use token, ends every session and clears the
//! account's failed sign-ins (a stranger who throttled it cannot keep its owner out). A new
//! password must pass keel-tenancy's rule (422 naming `password` otherwise).

use crate::extract::AppJson;
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use keel_ids::Email;
use keel_queue::NewJob;
use keel_ratelimit::{LimitKey, Outcome};
use keel_worker::PasswordResetRequest;
use serde::Deserialize;
use utoipa::openapi::schema::Object;
use utoipa::ToSchema;

use super::openapi::{BadRequest, Invalid, TooLarge, Unavailable};
use super::schema;

/// Hex characters in a reset token (32 random bytes).
const RESET_TOKEN_LEN: usize = 64;

/// The account's address.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Forgot {
    #[schema(format = Email)]
    email: String,
}

#[utoipa::path(
    post,
    path = "/api/auth/forgot-password",
    tag = "auth",
    summary = "Email a password reset link (always 202, whether or not the account exists)",
    request_body = Forgot,
    responses(
        (status = 202, description = "Accepted; a link is mailed if the account exists"),
        (status = 400, response = BadRequest),
        (status = 413, response = TooLarge),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    )
)]
pub(crate) async fn forgot_password(
    State(state): State<AppState>,
    AppJson(body): AppJson<Forgot>,
) -> Result<StatusCode, ApiError> {
    let email = Email::parse(&body.email).map_err(|e| ApiError::invalid("email", e.to_string()))?;
    let key = LimitKey::email(email.as_str());
    match state.limits.password_recovery.check_key(&key).await {
        Outcome::Decided(d) if !d.is_allowed() => {
            tracing::info!(email = %email, "password recovery over its limit; nothing queued");
            return Ok(StatusCode::ACCEPTED);
        }
        Outcome::Unavailable { retry_after } => {
            return Err(ApiError::unavailable("please try again in a moment", retry_after.as_secs().max(1)));
        }
        _ => {}
    }
    let Some(keyring) = state.queue.keyring() else {
        tracing::error!("password recovery cannot be queued: no job encryption key (KEEL_JOB_ENCRYPTION_KEY)");
        return Err(ApiError::unavailable("password recovery is unavailable; please try again later", 30));
    };
    // One active request per address: the dedupe key is a keyed hash, so the address is not in
    // the dedupe index in clear. Enqueued directly, never run inline: the handler's account
    // lookup must stay off the request path whatever the incident switches say.
    let dedupe = PasswordResetRequest::dedupe_key(keyring, &email);
    let job =
        NewJob::args(&PasswordResetRequest { email: email.clone() }).map_err(ApiError::internal)?.dedupe_key(&dedupe);
    match state.queue.enqueue(job).await {
        Ok(e) => {
            tracing::info!(email = %email, job = %e.id(), duplicate = e.is_duplicate(), "password recovery queued")
        }
        Err(e) => {
            tracing::error!(email = %email, error = %keel_ids::mask_email(&e.to_string()), "password recovery not queued");
            return Err(ApiError::unavailable("the request could not be queued; please try again shortly", 5));
        }
    }
    Ok(StatusCode::ACCEPTED)
}

/// The token from the mailed link and the new password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reset {
    #[schema(schema_with = token_schema)]
    token: String,
    /// Must also pass the strength rule (a 422 naming `password` says why not); at most
    /// 256 bytes.
    #[schema(schema_with = password_schema)]
    password: String,
}

fn token_schema() -> Object {
    let mut o = schema::string(RESET_TOKEN_LEN, RESET_TOKEN_LEN);
    o.pattern = Some(format!("^[0-9a-fA-F]{{{RESET_TOKEN_LEN}}}$"));
    o
}

fn password_schema() -> Object {
    schema::string(keel_tenancy::MIN_PASSWORD_LEN, keel_tenancy::MAX_PASSWORD_LEN)
}

#[utoipa::path(
    post,
    path = "/api/auth/reset-password",
    tag = "auth",
    summary = "Set a new password with a reset token; ends every session of the user",
    request_body = Reset,
    responses(
        (status = 204, description = "Password changed"),
        (status = 400, response = BadRequest),
        (status = 413, response = TooLarge),
        (status = 422, response = Invalid),
    )
)]
pub(crate) async fn reset_password(
    State(state): State<AppState>,
    AppJson(body): AppJson<Reset>,
) -> Result<StatusCode, ApiError> {
    if body.token.len() != RESET_TOKEN_LEN || !body.token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::invalid("token", "is not a reset token; use the link from the email"));
    }
    match state
        .tenancy
        .complete_reset(&body.token, &body.password, chrono::Utc::now())
        .await
        .map_err(crate::error::from_tenancy)?
    {
        Some(user) => {
            tracing::info!(%user, "password reset; every session of the user ended");
            clear_sign_in_failures(&state, user).await;
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(ApiError::invalid("token", "is unknown, used or expired; ask for a new link")),
    }
}

/// The reset is done whatever happens here: a failure is logged, and the leftover count fades at
/// the policy's rate (or `keel-ops user unlock` clears it).
async fn clear_sign_in_failures(state: &AppState, user: keel_ids::UserId) {
    let cleared = match state.tenancy.user(user).await {
        Ok(Some(u)) => state.limits.sign_in_failures.clear(&u.email).await.map_err(|e| e.to_string()),
        Ok(None) => Ok(false),
        Err(e) => Err(e.to_string()),
    };
    match cleared {
        Ok(true) => tracing::info!(%user, "failed sign-ins cleared by the password reset"),
        Ok(false) => {}
        Err(e) => tracing::warn!(%user, error = %keel_ids::mask_email(&e), "failed sign-ins not cleared after a reset"),
    }
}
