//! `auth.password_reset`: the forgot-password request, resolved here rather than in the
//! request path, so the request does the same work whether or not the account exists. The
//! payload holds only the address, sealed; this handler finds the account, mints the
//! single-use token and mails the link. An unknown address gets no mail and leaves no trace
//! but a masked log line. The link exists only in the mail: never in a job, log or table.

use super::mail::{MailError, Mailer, Message};
use keel_ids::Email;
use keel_queue::{JobArgs, JobContext, JobError, KindOptions};
use keel_tenancy::Tenancy;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The job: one normalised address. Sealed whole-field at enqueue (`email`), so no address is
/// stored in clear; enqueue it with a dedupe key from [`keel_queue::Keyring::keyed_hash`] of
/// the address so rapid repeats collapse onto one mail.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    pub email: Email,
}

impl JobArgs for PasswordResetRequest {
    const KIND: &'static str = "auth.password_reset";
    fn options() -> KindOptions {
        KindOptions::default().max_attempts(8).sealed_fields(&["email"])
    }
}

impl PasswordResetRequest {
    /// The dedupe key for `email`: a keyed hash, so the address is not stored in the dedupe
    /// index in clear, nor can a guessed address be confirmed from it without the key.
    pub fn dedupe_key(keyring: &keel_queue::Keyring, email: &Email) -> String {
        format!("password-reset:{}", keyring.keyed_hash("password-reset", email.as_str().as_bytes()))
    }
}

pub(crate) struct PasswordResets {
    pub(crate) tenancy: Tenancy,
    pub(crate) mailer: Arc<dyn Mailer>,
    pub(crate) public_url: String,
    pub(crate) ttl: Duration,
}

impl PasswordResets {
    pub(crate) async fn run(&self, req: PasswordResetRequest, ctx: JobContext) -> Result<(), JobError> {
        let email = req.email;
        let user = self.tenancy.user_by_email(&email).await.map_err(|e| JobError::retryable(e.to_string()))?;
        let Some(user) = user else {
            tracing::info!(event = "password_reset_unknown", to = %email, "password reset for an unknown address; no mail");
            return Ok(());
        };
        let token = self
            .tenancy
            .create_reset(user.id, self.ttl, chrono::Utc::now())
            .await
            .map_err(|e| JobError::retryable(e.to_string()))?;
        let link = format!("{}/reset-password?token={token}", self.public_url);
        let msg = Message {
            to: email.clone(),
            subject: "Reset your password".into(),
            text: format!(
                "Someone asked to reset the password of this account. If it was you, open:\n\n{link}\n\nThe link \
                 works once and expires in {} minutes. If it was not you, ignore this email.",
                self.ttl.as_secs() / 60
            ),
        };
        // The job id is the delivery id: a redelivery after a crash carries the same Message-ID
        // (and replaces the outbox file), so the receiver can drop the duplicate.
        match self.mailer.send(&ctx.job.id.to_string(), &msg).await {
            Ok(()) => {
                tracing::info!(event = "password_reset_sent", to = %email, user = %user.id, "password reset mail sent");
                Ok(())
            }
            Err(e) => {
                // This token was never delivered; the next attempt mints its own.
                let _ = self.tenancy.cancel_reset(&token).await;
                match e {
                    MailError::Permanent(_) => Err(JobError::permanent(e.to_string())),
                    MailError::Transient(_) => Err(JobError::retryable(e.to_string())),
                }
            }
        }
    }
}
