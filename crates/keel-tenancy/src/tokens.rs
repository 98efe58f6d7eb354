//! Bearer API tokens: `keel_<id>_<secret>`, the secret stored hashed, revocable by id.

use crate::secret::{hash_secret, new_secret};
use crate::{Tenancy, TenancyError, TokenIdentity, TokenScope};
use chrono::{DateTime, Utc};
use keel_ids::UserId;
use subtle::ConstantTimeEq;

/// A token just issued.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// Its id (for listing and revoking; not a secret).
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
    /// Issues a token for `user` with the org scope (never the operator scope: see
    /// [`Tenancy::issue_operator_token`]); [`TenancyError::UnknownUser`] if there is no such user.
    pub async fn issue_token(&self, user: UserId) -> Result<IssuedToken, TenancyError> {
        self.issue_scoped_token(user, TokenScope::Org).await
    }

    pub(crate) async fn issue_scoped_token(
        &self,
        user: UserId,
        scope: TokenScope,
    ) -> Result<IssuedToken, TenancyError> {
        let id = uuid::Uuid::now_v7();
        let secret = new_secret();
        self.store.insert_token(id, user, &hash_secret(&secret), scope).await?;
        Ok(IssuedToken { id, token: format!("keel_{}_{secret}", id.simple()) })
    }

    /// The token's user, unless it is malformed, unknown, wrong or revoked.
    pub async fn resolve_token(&self, token: &str) -> Result<Option<UserId>, TenancyError> {
        Ok(self.resolve_token_identity(token).await?.map(|i| i.user_id))
    }

    /// The token's user and scope, unless it is malformed, unknown, wrong or revoked. The
    /// operator scope says what the token was issued for; whether the user is an operator
    /// *now* is [`Tenancy::is_operator`]'s answer, which callers check as well.
    pub async fn resolve_token_identity(&self, token: &str) -> Result<Option<TokenIdentity>, TenancyError> {
        let Some((id, secret)) = parse_token(token) else { return Ok(None) };
        let Some(stored) = self.store.token(id).await? else { return Ok(None) };
        let matches: bool = hash_secret(secret).as_bytes().ct_eq(stored.secret_hash.as_bytes()).into();
        if !matches || stored.revoked {
            return Ok(None);
        }
        Ok(Some(TokenIdentity { user_id: stored.user_id, scope: stored.scope }))
    }

    /// Revokes a token; `false` when no such token exists. Revoking twice is harmless.
    pub async fn revoke_token(&self, id: uuid::Uuid, now: DateTime<Utc>) -> Result<bool, TenancyError> {
        self.store.revoke_token(id, now).await
    }
}
