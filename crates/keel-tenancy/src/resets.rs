//! Password resets: a single-use, expiring token; completing one sets the password and ends
//! every session of the user, in one transaction.

use crate::password::hash_password;
use crate::row::{ms, uuid};
use crate::secret::{hash_secret, new_secret};
use crate::{Tenancy, TenancyError};
use chrono::{DateTime, Utc};
use keel_ids::UserId;
use keel_storage::{sqlx, Db};
use std::time::Duration;

impl Tenancy {
    /// A new reset token for `user`, valid for `ttl`. Shown once (in the email); stored hashed.
    pub async fn create_reset(&self, user: UserId, ttl: Duration, now: DateTime<Utc>) -> Result<String, TenancyError> {
        let token = new_secret();
        let exp = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1));
        match self.db() {
            Db::Postgres(p) => {
                sqlx::query("INSERT INTO keel_password_resets (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
                    .bind(hash_secret(&token))
                    .bind(user.as_uuid())
                    .bind(exp)
                    .execute(p)
                    .await?;
            }
            Db::Sqlite(p) => {
                sqlx::query("INSERT INTO keel_password_resets (token_hash, user_id, expires_at) VALUES (?, ?, ?)")
                    .bind(hash_secret(&token))
                    .bind(user.to_string())
                    .bind(ms(exp))
                    .execute(p)
                    .await?;
            }
        }
        Ok(token)
    }

    /// Uses a reset token: marks it used, sets the new password, ends every session of the
    /// user — all or nothing. `None` when the token is unknown, used or expired.
    pub async fn complete_reset(
        &self,
        token: &str,
        new_password: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, TenancyError> {
        // Hash first: slow, and a weak password must be refused before the token is spent.
        let hash = hash_password(new_password).await?;
        let h = hash_secret(token);
        match self.db() {
            Db::Postgres(p) => {
                let mut tx = p.begin().await?;
                let user: Option<uuid::Uuid> = sqlx::query_scalar(
                    "UPDATE keel_password_resets SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
                     RETURNING user_id",
                )
                .bind(&h)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(user) = user else { return Ok(None) };
                sqlx::query("UPDATE keel_users SET password_hash = $1 WHERE id = $2")
                    .bind(&hash)
                    .bind(user)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM keel_sessions WHERE user_id = $1").bind(user).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(Some(UserId::from_uuid(user)))
            }
            Db::Sqlite(p) => {
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                let user: Option<String> = sqlx::query_scalar(
                    "UPDATE keel_password_resets SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2
                     RETURNING user_id",
                )
                .bind(&h)
                .bind(ms(now))
                .fetch_optional(&mut *tx)
                .await?;
                let Some(user) = user else { return Ok(None) };
                sqlx::query("UPDATE keel_users SET password_hash = ? WHERE id = ?")
                    .bind(&hash)
                    .bind(&user)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM keel_sessions WHERE user_id = ?").bind(&user).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(Some(UserId::from_uuid(uuid(&user)?)))
            }
        }
    }
}

impl Tenancy {
    /// Withdraws an unused reset token (its email was collapsed onto an earlier one).
    pub async fn cancel_reset(&self, token: &str) -> Result<(), TenancyError> {
        match self.db() {
            Db::Postgres(p) => {
                sqlx::query("DELETE FROM keel_password_resets WHERE token_hash = $1 AND used_at IS NULL")
                    .bind(hash_secret(token))
                    .execute(p)
                    .await?;
            }
            Db::Sqlite(p) => {
                sqlx::query("DELETE FROM keel_password_resets WHERE token_hash = ? AND used_at IS NULL")
                    .bind(hash_secret(token))
                    .execute(p)
                    .await?;
            }
        }
        Ok(())
    }
}
