//! Password recovery through the queue. `forgot-password` always answers 202 — for unknown
//! addresses and over the per-address limit too — so it reveals nothing about accounts; rapid
//! duplicates collapse onto one queued `email.send` job via a dedupe key; the address is masked
//! in every log line. `reset-password` uses the single-use token, ends every session and
//! clears the account's failed sign-ins (a stranger who throttled it cannot keep its owner out).
//! A new password must pass keel-tenancy's rule (422 naming `password` otherwise).

use crate::extract::AppJson;
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use keel_ids::Email;
use keel_queue::{Dispatched, NewJob};
use keel_ratelimit::{LimitKey, Outcome};
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Forgot {
    email: String,
}

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
    let Some(user) = state.tenancy.user_by_email(&email).await.map_err(crate::error::from_tenancy)? else {
        tracing::info!(email = %email, "password recovery for an unknown address; nothing queued");
        return Ok(StatusCode::ACCEPTED);
    };
    let now = chrono::Utc::now();
    let token =
        state.tenancy.create_reset(user.id, state.config.reset_ttl, now).await.map_err(crate::error::from_tenancy)?;
    let link = format!("{}/reset-password?token={token}", state.config.public_url);
    let payload = serde_json::json!({
        "to": email.as_str(),
        "subject": "Reset your password",
        "text": format!("Someone asked to reset the password of this account. If it was you, open:\n\n{link}\n\nThe link works once and expires in {} minutes.", state.config.reset_ttl.as_secs() / 60),
    });
    // One active recovery email per address: the key is a hash, so the address is not stored
    // in the dedupe index in the clear.
    let dedupe = format!("password-recovery:{}", hex::encode(Sha256::digest(email.as_str().as_bytes())));
    let job = NewJob::new("email.send", &payload).map_err(ApiError::internal)?.dedupe_key(&dedupe);
    match state.dispatcher.dispatch(job).await {
        Ok(Dispatched::Queued(e)) if e.is_duplicate() => {
            // The earlier email is still on its way; this token would never be sent.
            let _ = state.tenancy.cancel_reset(&token).await;
            tracing::info!(email = %email, job = %e.id(), "password recovery collapsed onto the queued email");
        }
        Ok(Dispatched::Queued(e)) => tracing::info!(email = %email, job = %e.id(), "password recovery email queued"),
        Ok(Dispatched::RanInline) => tracing::info!(email = %email, "password recovery email sent inline"),
        Err(e) => {
            let _ = state.tenancy.cancel_reset(&token).await;
            tracing::error!(email = %email, error = %keel_ids::mask_email(&e.to_string()), "password recovery email not queued");
            return Err(ApiError::unavailable("the email could not be queued; please try again shortly", 5));
        }
    }
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reset {
    token: String,
    password: String,
}

pub(crate) async fn reset_password(
    State(state): State<AppState>,
    AppJson(body): AppJson<Reset>,
) -> Result<StatusCode, ApiError> {
    if body.token.len() != 64 || !body.token.bytes().all(|b| b.is_ascii_hexdigit()) {
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
