//! Bearer API tokens: `keel_<id>_<secret>`, the secret stored hashed, revocable by id.

use crate::row::{ms, uuid};
use crate::secret::{hash_secret, new_secret};
use crate::{Tenancy, TenancyError};
use chrono::{DateTime, Utc};
use keel_ids::UserId;
use keel_storage::{sqlx, Db};
use subtle::ConstantTimeEq;

#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub id: uuid::Uuid,
    /// Shown once; only its hash is stored.
    pub token: String,
}

/// Splits `keel_<32 hex id>_<64 hex secret>`; anything else is not a token.
pub(crate) fn parse_token(token: &str) -> Option<(uuid::Uuid, &str)> {
    let rest = token.strip_prefix("keel_")?;
    let (id, secret) = rest.split_once('_')?;
    if id.len() != 32 || secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((uuid::Uuid::parse_str(id).ok()?, secret))
}

impl Tenancy {
    pub async fn issue_token(&self, user: UserId) -> Result<IssuedToken, TenancyError> {
        let id = uuid::Uuid::now_v7();
        let secret = new_secret();
        let res = match self.db() {
            Db::Postgres(p) => {
                sqlx::query("INSERT INTO keel_api_tokens (id, user_id, secret_hash) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(user.as_uuid())
                    .bind(hash_secret(&secret))
                    .execute(p)
                    .await
                    .map(drop)
            }
            Db::Sqlite(p) => sqlx::query("INSERT INTO keel_api_tokens (id, user_id, secret_hash) VALUES (?, ?, ?)")
                .bind(id.to_string())
                .bind(user.to_string())
                .bind(hash_secret(&secret))
                .execute(p)
                .await
                .map(drop),
        };
        match res {
            Err(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => {
                return Err(TenancyError::UnknownUser(user.to_string()));
            }
            other => other?,
        }
        Ok(IssuedToken { id, token: format!("keel_{}_{secret}", id.simple()) })
    }

    /// The token's user, unless it is malformed, unknown, wrong or revoked.
    pub async fn resolve_token(&self, token: &str) -> Result<Option<UserId>, TenancyError> {
        let Some((id, secret)) = parse_token(token) else { return Ok(None) };
        let row: Option<(String, String, bool)> = match self.db() {
            Db::Postgres(p) => sqlx::query_as::<_, (uuid::Uuid, String, bool)>(
                "SELECT user_id, secret_hash, revoked_at IS NOT NULL FROM keel_api_tokens WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(p)
            .await?
            .map(|(u, h, r)| (u.to_string(), h, r)),
            Db::Sqlite(p) => {
                sqlx::query_as("SELECT user_id, secret_hash, revoked_at IS NOT NULL FROM keel_api_tokens WHERE id = ?")
                    .bind(id.to_string())
                    .fetch_optional(p)
                    .await?
            }
        };
        let Some((user, stored, revoked)) = row else { return Ok(None) };
        let matches: bool = hash_secret(secret).as_bytes().ct_eq(stored.as_bytes()).into();
        if !matches || revoked {
            return Ok(None);
        }
        Ok(Some(UserId::from_uuid(uuid(&user)?)))
    }

    /// Revokes a token; `false` when no such token exists. Revoking twice is harmless.
    pub async fn revoke_token(&self, id: uuid::Uuid, now: DateTime<Utc>) -> Result<bool, TenancyError> {
        let n = match self.db() {
            Db::Postgres(p) => {
                sqlx::query("UPDATE keel_api_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(p)
                    .await?
                    .rows_affected()
            }
            Db::Sqlite(p) => {
                sqlx::query("UPDATE keel_api_tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1")
                    .bind(id.to_string())
                    .bind(ms(now))
                    .execute(p)
                    .await?
                    .rows_affected()
            }
        };
        Ok(n > 0)
    }
}
