//! Password resets: a single-use, expiring token; completing one sets the password and ends
//! every session of the user, in one transaction.

use crate::password::{check_password_off_thread, hash_password};
use crate::secret::{hash_secret, new_secret};
use crate::sessions::chrono_dur;
use crate::{Tenancy, TenancyError};
use chrono::{DateTime, Utc};
use keel_ids::UserId;
use std::time::Duration;

impl Tenancy {
    /// A new reset token for `user`, valid for `ttl`. Shown once (in the email); stored hashed.
    pub async fn create_reset(&self, user: UserId, ttl: Duration, now: DateTime<Utc>) -> Result<String, TenancyError> {
        let token = new_secret();
        let exp = now + chrono_dur("ttl", ttl)?;
        self.store.insert_reset(&hash_secret(&token), user, exp).await?;
        Ok(token)
    }

    /// Uses a reset token: marks it used, sets the new password, ends every session of the
    /// user — all or nothing. `None` when the token is unknown, used or expired. A password the
    /// policy refuses is [`TenancyError::Invalid`] naming `password`, and the token is not spent.
    pub async fn complete_reset(
        &self,
        token: &str,
        new_password: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, TenancyError> {
        let h = hash_secret(token);
        // A stale link answers "ask for a new one" before any complaint about the password, and
        // costs no hashing. The owner is read to weigh the password against their address.
        let Some(owner) = self.store.reset_owner(&h, now).await? else { return Ok(None) };
        check_password_off_thread(new_password, Some(&owner.email)).await?;
        // Hash before spending the token: slow, and a failure must leave the token usable. The
        // spend itself is guarded again, so two racing completions still use it once.
        let hash = hash_password(new_password).await?;
        self.store.use_reset(&h, &hash, now).await
    }

    /// Withdraws an unused reset token (its email was collapsed onto an earlier one).
    pub async fn cancel_reset(&self, token: &str) -> Result<(), TenancyError> {
        self.store.delete_unused_reset(&hash_secret(token)).await
    }
}
