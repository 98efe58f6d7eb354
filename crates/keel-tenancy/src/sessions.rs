//! Browser sessions: a random id shown once (in the cookie), stored hashed, with an expiry
//! that slides forward while the user is active.

use crate::row::{from_ms, ms, uuid};
use crate::secret::{hash_secret, new_secret};
use crate::{Tenancy, TenancyError};
use chrono::{DateTime, Utc};
use keel_ids::{OrgId, UserId};
use keel_storage::{sqlx, Db};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct NewSession {
    /// The cookie value; never stored.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub user_id: UserId,
    pub active_org: Option<OrgId>,
    pub expires_at: DateTime<Utc>,
    /// True when this lookup slid the expiry forward (the cookie should be re-issued).
    pub refreshed: bool,
}

fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(365))
}

type Row = (String, Option<String>, i64);
type PgRow = (uuid::Uuid, Option<uuid::Uuid>, DateTime<Utc>);

fn pg_row(r: PgRow) -> Row {
    (r.0.to_string(), r.1.map(|o| o.to_string()), ms(r.2))
}

fn to_info(r: Row, refreshed: bool) -> Result<SessionInfo, TenancyError> {
    Ok(SessionInfo {
        user_id: UserId::from_uuid(uuid(&r.0)?),
        active_org: r.1.map(|s| uuid(&s).map(OrgId::from_uuid)).transpose()?,
        expires_at: from_ms(r.2),
        refreshed,
    })
}

impl Tenancy {
    pub async fn create_session(
        &self,
        user: UserId,
        active_org: Option<OrgId>,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<NewSession, TenancyError> {
        let token = new_secret();
        let expires_at = now + chrono_dur(ttl);
        match self.db() {
            Db::Postgres(p) => {
                sqlx::query(
                    "INSERT INTO keel_sessions (id_hash, user_id, active_org_id, expires_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(hash_secret(&token))
                .bind(user.as_uuid())
                .bind(active_org.map(|o| o.as_uuid()))
                .bind(expires_at)
                .execute(p)
                .await?;
            }
            Db::Sqlite(p) => {
                sqlx::query(
                    "INSERT INTO keel_sessions (id_hash, user_id, active_org_id, expires_at) VALUES (?, ?, ?, ?)",
                )
                .bind(hash_secret(&token))
                .bind(user.to_string())
                .bind(active_org.map(|o| o.to_string()))
                .bind(ms(expires_at))
                .execute(p)
                .await?;
            }
        }
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
        let new_exp = now + chrono_dur(ttl);
        let threshold = new_exp - chrono_dur(slide_every);
        // Read first: almost every request finds the expiry recent enough and writes nothing
        // (on SQLite a write per request would serialise every authenticated request).
        let Some(found) = self.read_session(&h, now).await? else { return Ok(None) };
        if found.2 >= ms(threshold) {
            return to_info(found, false).map(Some);
        }
        // The guarded update slides it once even when several requests race here; a loser
        // reads again so a session ended meanwhile is not answered as live.
        match self.slide_session(&h, new_exp, now, threshold).await? {
            Some(slid) => to_info(slid, true).map(Some),
            None => self.read_session(&h, now).await?.map(|r| to_info(r, false)).transpose(),
        }
    }

    async fn read_session(&self, h: &str, now: DateTime<Utc>) -> Result<Option<Row>, TenancyError> {
        const Q: &str =
            "SELECT user_id, active_org_id, expires_at FROM keel_sessions WHERE id_hash = $1 AND expires_at > $2";
        Ok(match self.db() {
            Db::Postgres(p) => {
                let r: Option<PgRow> = sqlx::query_as(Q).bind(h).bind(now).fetch_optional(p).await?;
                r.map(pg_row)
            }
            // SQLite numbers `$N` parameters by first appearance; `?N` is positional.
            Db::Sqlite(p) => sqlx::query_as(&Q.replace('$', "?")).bind(h).bind(ms(now)).fetch_optional(p).await?,
        })
    }

    async fn slide_session(
        &self,
        h: &str,
        new_exp: DateTime<Utc>,
        now: DateTime<Utc>,
        threshold: DateTime<Utc>,
    ) -> Result<Option<Row>, TenancyError> {
        const Q: &str =
            "UPDATE keel_sessions SET expires_at = $2 WHERE id_hash = $1 AND expires_at > $3 AND expires_at < $4
                         RETURNING user_id, active_org_id, expires_at";
        Ok(match self.db() {
            Db::Postgres(p) => {
                let r: Option<PgRow> =
                    sqlx::query_as(Q).bind(h).bind(new_exp).bind(now).bind(threshold).fetch_optional(p).await?;
                r.map(pg_row)
            }
            Db::Sqlite(p) => {
                sqlx::query_as(&Q.replace('$', "?"))
                    .bind(h)
                    .bind(ms(new_exp))
                    .bind(ms(now))
                    .bind(ms(threshold))
                    .fetch_optional(p)
                    .await?
            }
        })
    }

    pub async fn set_active_org(&self, token: &str, org: OrgId) -> Result<(), TenancyError> {
        match self.db() {
            Db::Postgres(p) => {
                sqlx::query("UPDATE keel_sessions SET active_org_id = $1 WHERE id_hash = $2")
                    .bind(org.as_uuid())
                    .bind(hash_secret(token))
                    .execute(p)
                    .await?;
            }
            Db::Sqlite(p) => {
                sqlx::query("UPDATE keel_sessions SET active_org_id = ? WHERE id_hash = ?")
                    .bind(org.to_string())
                    .bind(hash_secret(token))
                    .execute(p)
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn end_session(&self, token: &str) -> Result<(), TenancyError> {
        match self.db() {
            Db::Postgres(p) => {
                sqlx::query("DELETE FROM keel_sessions WHERE id_hash = $1").bind(hash_secret(token)).execute(p).await?;
            }
            Db::Sqlite(p) => {
                sqlx::query("DELETE FROM keel_sessions WHERE id_hash = ?").bind(hash_secret(token)).execute(p).await?;
            }
        }
        Ok(())
    }
}
