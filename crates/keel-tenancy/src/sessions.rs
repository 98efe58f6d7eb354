//! Browser sessions: a random id shown once (in the cookie), stored hashed, with an expiry
//! that slides forward while the user is active.

use crate::secret::{hash_secret, new_secret};
use crate::store::StoredSession;
use crate::{Tenancy, TenancyError};
use chrono::{DateTime, Utc};
use keel_ids::{OrgId, UserId};
use std::time::Duration;

/// A session just created.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The cookie value; never stored.
    pub token: String,
    /// When it expires unless used (each use slides it forward).
    pub expires_at: DateTime<Utc>,
}

/// A live session, as resolved from its cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Who is signed in.
    pub user_id: UserId,
    /// The org the user chose to act in, if any.
    pub active_org: Option<OrgId>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// True when this lookup slid the expiry forward (the cookie should be re-issued).
    pub refreshed: bool,
}

/// A std duration as chrono's; one beyond chrono's range (hundreds of millions of years) is a
/// configuration mistake, refused naming `field`, not clamped to something else.
pub(crate) fn chrono_dur(field: &'static str, d: Duration) -> Result<chrono::Duration, TenancyError> {
    chrono::Duration::from_std(d).map_err(|_| TenancyError::invalid(field, format!("{d:?} is too long")))
}

fn info(s: StoredSession, refreshed: bool) -> SessionInfo {
    SessionInfo { user_id: s.user_id, active_org: s.active_org, expires_at: s.expires_at, refreshed }
}

impl Tenancy {
    /// Starts a session for `user` lasting `ttl` from `now`; the token is returned once.
    pub async fn create_session(
        &self,
        user: UserId,
        active_org: Option<OrgId>,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<NewSession, TenancyError> {
        let token = new_secret();
        let expires_at = now + chrono_dur("ttl", ttl)?;
        let stored = StoredSession { user_id: user, active_org, expires_at };
        self.store.insert_session(&hash_secret(&token), &stored).await?;
        Ok(NewSession { token, expires_at })
    }

    /// Looks a session up and slides its expiry to `now + ttl` when less than `ttl - slide_every`
    /// is left, so an active user never meets the login page, while a burst of requests costs
    /// one write per `slide_every`, not one per request. Expired or unknown: `None`.
    pub async fn resolve_session(
        &self,
        token: &str,
        now: DateTime<Utc>,
        ttl: Duration,
        slide_every: Duration,
    ) -> Result<Option<SessionInfo>, TenancyError> {
        let h = hash_secret(token);
        let new_exp = now + chrono_dur("ttl", ttl)?;
        let threshold = new_exp - chrono_dur("slide_every", slide_every)?;
        // Read first: almost every request finds the expiry recent enough and writes nothing
        // (on SQLite a write per request would serialise every authenticated request).
        let Some(found) = self.store.read_session(&h, now).await? else { return Ok(None) };
        if found.expires_at >= threshold {
            return Ok(Some(info(found, false)));
        }
        // The guarded update slides it once even when several requests race here; a loser
        // reads again so a session ended meanwhile is not answered as live.
        match self.store.slide_session(&h, new_exp, now, threshold).await? {
            Some(slid) => Ok(Some(info(slid, true))),
            None => Ok(self.store.read_session(&h, now).await?.map(|s| info(s, false))),
        }
    }

    /// Switches the org the session works in.
    pub async fn set_active_org(&self, token: &str, org: OrgId) -> Result<(), TenancyError> {
        self.store.set_active_org(&hash_secret(token), org).await
    }

    /// Ends a session (sign-out); ending an unknown one is harmless.
    pub async fn end_session(&self, token: &str) -> Result<(), TenancyError> {
        self.store.delete_session(&hash_secret(token)).await
    }
}
