//! [`SqliteTenancyStore`]: tenancy on SQLite (UUIDs as TEXT, timestamps as INTEGER unix
//! milliseconds). Multi-statement writes begin with `BEGIN IMMEDIATE`, so a writer never
//! deadlocks upgrading a read lock.

use super::{is_foreign_key_violation, is_unique_violation, StoreFuture, StoredSession, StoredToken, TenancyStore};
use crate::row::{detail, email, from_ms, ms, org_id, role, scope, user_id, uuid as parse_uuid};
use crate::{Membership, OperatorAction, OperatorGrant, Org, OrgMember, Role, TenancyError, TokenScope, UserRecord};
use chrono::{DateTime, Utc};
use keel_ids::{Email, OrgId, UserId};
use keel_storage::Backend;
use sqlx::SqlitePool;
use uuid::Uuid;

/// Tenancy's rows in a SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteTenancyStore {
    pool: SqlitePool,
}

impl SqliteTenancyStore {
    /// A store over `pool` (tenancy's schema installed by [`crate::migrate`]).
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

type UserRow = (String, String, Option<String>);
type SessionRow = (String, Option<String>, i64);

fn user(r: UserRow) -> Result<UserRecord, TenancyError> {
    Ok(UserRecord { id: user_id("keel_users.id", &r.0)?, email: email("keel_users.email", &r.1)?, password_hash: r.2 })
}

fn session(r: SessionRow) -> Result<StoredSession, TenancyError> {
    Ok(StoredSession {
        user_id: user_id("keel_sessions.user_id", &r.0)?,
        active_org: r.1.map(|o| org_id("keel_sessions.active_org_id", &o)).transpose()?,
        expires_at: from_ms("keel_sessions.expires_at", r.2)?,
    })
}

const ANCESTORS: &str = "WITH RECURSIVE up(id, parent_id, depth) AS (
        SELECT id, parent_id, 0 FROM keel_orgs WHERE id = ?1
        UNION ALL
        SELECT o.id, o.parent_id, up.depth + 1 FROM keel_orgs o JOIN up ON o.id = up.parent_id WHERE up.depth < ?2
    ) SELECT id FROM up ORDER BY depth";

impl TenancyStore for SqliteTenancyStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn insert_org<'a>(&'a self, org: &'a Org) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query("INSERT INTO keel_orgs (id, name, parent_id) VALUES (?, ?, ?)")
                .bind(org.id.to_string())
                .bind(&org.name)
                .bind(org.parent_id.map(|p| p.to_string()))
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn org(&self, id: OrgId) -> StoreFuture<'_, Option<Org>> {
        Box::pin(async move {
            let row: Option<(String, String, Option<String>)> =
                sqlx::query_as("SELECT id, name, parent_id FROM keel_orgs WHERE id = ?")
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
            row.map(|(i, name, p)| {
                Ok(Org {
                    id: org_id("keel_orgs.id", &i)?,
                    name,
                    parent_id: p.map(|p| org_id("keel_orgs.parent_id", &p)).transpose()?,
                })
            })
            .transpose()
        })
    }

    fn ancestors(&self, id: OrgId, max_depth: i64) -> StoreFuture<'_, Vec<OrgId>> {
        Box::pin(async move {
            let ids: Vec<String> =
                sqlx::query_scalar(ANCESTORS).bind(id.to_string()).bind(max_depth).fetch_all(&self.pool).await?;
            ids.iter().map(|s| org_id("keel_orgs.id", s)).collect()
        })
    }

    fn insert_user<'a>(&'a self, id: UserId, email: &'a Email, password_hash: Option<&'a str>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let res = sqlx::query("INSERT INTO keel_users (id, email, password_hash) VALUES (?, ?, ?)")
                .bind(id.to_string())
                .bind(email.as_str())
                .bind(password_hash)
                .execute(&self.pool)
                .await;
            match res {
                Err(e) if is_unique_violation(&e) => Err(TenancyError::EmailTaken),
                other => other.map(drop).map_err(Into::into),
            }
        })
    }

    fn user_by_email<'a>(&'a self, email: &'a Email) -> StoreFuture<'a, Option<UserRecord>> {
        Box::pin(async move {
            let row: Option<UserRow> =
                sqlx::query_as("SELECT id, email, password_hash FROM keel_users WHERE email = ?")
                    .bind(email.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
            row.map(user).transpose()
        })
    }

    fn user_by_id(&self, id: UserId) -> StoreFuture<'_, Option<UserRecord>> {
        Box::pin(async move {
            let row: Option<UserRow> = sqlx::query_as("SELECT id, email, password_hash FROM keel_users WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
            row.map(user).transpose()
        })
    }

    fn set_password_hash<'a>(&'a self, user: UserId, hash: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let n = sqlx::query("UPDATE keel_users SET password_hash = ? WHERE id = ?")
                .bind(hash)
                .bind(user.to_string())
                .execute(&self.pool)
                .await?
                .rows_affected();
            Ok(n > 0)
        })
    }

    fn upsert_membership(&self, user: UserId, org: OrgId, role: Role) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO keel_memberships (user_id, org_id, role) VALUES (?, ?, ?)
                 ON CONFLICT (user_id, org_id) DO UPDATE SET role = excluded.role",
            )
            .bind(user.to_string())
            .bind(org.to_string())
            .bind(role.as_str())
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn memberships(&self, user: UserId) -> StoreFuture<'_, Vec<Membership>> {
        Box::pin(async move {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT org_id, role FROM keel_memberships WHERE user_id = ? ORDER BY created_at, org_id",
            )
            .bind(user.to_string())
            .fetch_all(&self.pool)
            .await?;
            rows.into_iter()
                .map(|(o, r)| {
                    Ok(Membership {
                        org_id: org_id("keel_memberships.org_id", &o)?,
                        role: role("keel_memberships.role", &r)?,
                    })
                })
                .collect()
        })
    }

    fn insert_session<'a>(&'a self, id_hash: &'a str, s: &'a StoredSession) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query("INSERT INTO keel_sessions (id_hash, user_id, active_org_id, expires_at) VALUES (?, ?, ?, ?)")
                .bind(id_hash)
                .bind(s.user_id.to_string())
                .bind(s.active_org.map(|o| o.to_string()))
                .bind(ms(s.expires_at))
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn read_session<'a>(&'a self, id_hash: &'a str, now: DateTime<Utc>) -> StoreFuture<'a, Option<StoredSession>> {
        Box::pin(async move {
            let row: Option<SessionRow> = sqlx::query_as(
                "SELECT user_id, active_org_id, expires_at FROM keel_sessions WHERE id_hash = ? AND expires_at > ?",
            )
            .bind(id_hash)
            .bind(ms(now))
            .fetch_optional(&self.pool)
            .await?;
            row.map(session).transpose()
        })
    }

    fn slide_session<'a>(
        &'a self,
        id_hash: &'a str,
        new_expiry: DateTime<Utc>,
        now: DateTime<Utc>,
        threshold: DateTime<Utc>,
    ) -> StoreFuture<'a, Option<StoredSession>> {
        Box::pin(async move {
            let row: Option<SessionRow> = sqlx::query_as(
                "UPDATE keel_sessions SET expires_at = ?2 WHERE id_hash = ?1 AND expires_at > ?3 AND expires_at < ?4
                 RETURNING user_id, active_org_id, expires_at",
            )
            .bind(id_hash)
            .bind(ms(new_expiry))
            .bind(ms(now))
            .bind(ms(threshold))
            .fetch_optional(&self.pool)
            .await?;
            row.map(session).transpose()
        })
    }

    fn set_active_org<'a>(&'a self, id_hash: &'a str, org: OrgId) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query("UPDATE keel_sessions SET active_org_id = ? WHERE id_hash = ?")
                .bind(org.to_string())
                .bind(id_hash)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn delete_session<'a>(&'a self, id_hash: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query("DELETE FROM keel_sessions WHERE id_hash = ?").bind(id_hash).execute(&self.pool).await?;
            Ok(())
        })
    }

    fn insert_token<'a>(&'a self, id: Uuid, user: UserId, secret_hash: &'a str, sc: TokenScope) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let res = sqlx::query("INSERT INTO keel_api_tokens (id, user_id, secret_hash, scope) VALUES (?, ?, ?, ?)")
                .bind(id.to_string())
                .bind(user.to_string())
                .bind(secret_hash)
                .bind(sc.as_str())
                .execute(&self.pool)
                .await;
            match res {
                Err(e) if is_foreign_key_violation(&e) => Err(TenancyError::UnknownUser(user.to_string())),
                other => other.map(drop).map_err(Into::into),
            }
        })
    }

    fn token(&self, id: Uuid) -> StoreFuture<'_, Option<StoredToken>> {
        Box::pin(async move {
            let row: Option<(String, String, bool, String)> = sqlx::query_as(
                "SELECT user_id, secret_hash, revoked_at IS NOT NULL, scope FROM keel_api_tokens WHERE id = ?",
            )
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
            row.map(|(u, secret_hash, revoked, sc)| {
                Ok(StoredToken {
                    user_id: user_id("keel_api_tokens.user_id", &u)?,
                    secret_hash,
                    revoked,
                    scope: scope("keel_api_tokens.scope", &sc)?,
                })
            })
            .transpose()
        })
    }

    fn revoke_token(&self, id: Uuid, now: DateTime<Utc>) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let n = sqlx::query("UPDATE keel_api_tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1")
                .bind(id.to_string())
                .bind(ms(now))
                .execute(&self.pool)
                .await?
                .rows_affected();
            Ok(n > 0)
        })
    }

    fn insert_reset<'a>(&'a self, token_hash: &'a str, user: UserId, expires_at: DateTime<Utc>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query("INSERT INTO keel_password_resets (token_hash, user_id, expires_at) VALUES (?, ?, ?)")
                .bind(token_hash)
                .bind(user.to_string())
                .bind(ms(expires_at))
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn reset_owner<'a>(&'a self, token_hash: &'a str, now: DateTime<Utc>) -> StoreFuture<'a, Option<UserRecord>> {
        Box::pin(async move {
            let row: Option<UserRow> = sqlx::query_as(
                "SELECT u.id, u.email, u.password_hash FROM keel_password_resets r JOIN keel_users u ON u.id = r.user_id
                 WHERE r.token_hash = ?1 AND r.used_at IS NULL AND r.expires_at > ?2",
            )
            .bind(token_hash)
            .bind(ms(now))
            .fetch_optional(&self.pool)
            .await?;
            row.map(user).transpose()
        })
    }

    fn use_reset<'a>(
        &'a self,
        token_hash: &'a str,
        password_hash: &'a str,
        now: DateTime<Utc>,
    ) -> StoreFuture<'a, Option<UserId>> {
        Box::pin(async move {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            let user: Option<String> = sqlx::query_scalar(
                "UPDATE keel_password_resets SET used_at = ?2
                 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2
                 RETURNING user_id",
            )
            .bind(token_hash)
            .bind(ms(now))
            .fetch_optional(&mut *tx)
            .await?;
            let Some(user) = user else { return Ok(None) };
            // Parsed before anything else changes: a malformed id rolls the whole reset back.
            let id = user_id("keel_password_resets.user_id", &user)?;
            sqlx::query("UPDATE keel_users SET password_hash = ? WHERE id = ?")
                .bind(password_hash)
                .bind(&user)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM keel_sessions WHERE user_id = ?").bind(&user).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(Some(id))
        })
    }

    fn delete_unused_reset<'a>(&'a self, token_hash: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query("DELETE FROM keel_password_resets WHERE token_hash = ? AND used_at IS NULL")
                .bind(token_hash)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn grant_operator(&self, user: UserId, by: Option<UserId>, at: DateTime<Utc>) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let res = sqlx::query(
                "INSERT INTO keel_operators (user_id, granted_at, granted_by) VALUES (?, ?, ?)
                 ON CONFLICT (user_id) DO NOTHING",
            )
            .bind(user.to_string())
            .bind(ms(at))
            .bind(by.map(|b| b.to_string()))
            .execute(&self.pool)
            .await;
            match res {
                Err(e) if is_foreign_key_violation(&e) => Err(TenancyError::UnknownUser(user.to_string())),
                other => Ok(other?.rows_affected() > 0),
            }
        })
    }

    fn revoke_operator(&self, user: UserId) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let n = sqlx::query("DELETE FROM keel_operators WHERE user_id = ?")
                .bind(user.to_string())
                .execute(&self.pool)
                .await?
                .rows_affected();
            Ok(n > 0)
        })
    }

    fn is_operator(&self, user: UserId) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM keel_operators WHERE user_id = ?")
                .bind(user.to_string())
                .fetch_optional(&self.pool)
                .await?;
            Ok(found.is_some())
        })
    }

    fn operators(&self) -> StoreFuture<'_, Vec<OperatorGrant>> {
        Box::pin(async move {
            let rows: Vec<(String, String, i64, Option<String>)> = sqlx::query_as(
                "SELECT o.user_id, u.email, o.granted_at, o.granted_by FROM keel_operators o
                 JOIN keel_users u ON u.id = o.user_id ORDER BY o.granted_at, o.user_id",
            )
            .fetch_all(&self.pool)
            .await?;
            rows.into_iter()
                .map(|(u, e, at, by)| {
                    Ok(OperatorGrant {
                        user_id: user_id("keel_operators.user_id", &u)?,
                        email: email("keel_users.email", &e)?,
                        granted_at: from_ms("keel_operators.granted_at", at)?,
                        granted_by: by.map(|b| user_id("keel_operators.granted_by", &b)).transpose()?,
                    })
                })
                .collect()
        })
    }

    fn insert_operator_action<'a>(&'a self, a: &'a OperatorAction) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO keel_operator_actions (id, operator_id, action, target, detail, at, remote_addr)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(a.id.to_string())
            .bind(a.operator_id.to_string())
            .bind(&a.action)
            .bind(&a.target)
            .bind(a.detail.to_string())
            .bind(ms(a.at))
            .bind(a.remote_addr.as_deref())
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn operator_actions(&self, before: Option<Uuid>, limit: i64) -> StoreFuture<'_, Vec<OperatorAction>> {
        Box::pin(async move {
            // Canonical lower-case hyphenated UUIDv7 text sorts in time order, like the uuid type.
            let rows: Vec<ActionRow> = sqlx::query_as(
                "SELECT id, operator_id, action, target, detail, at, remote_addr FROM keel_operator_actions
                 WHERE ?1 IS NULL OR id < ?1 ORDER BY id DESC LIMIT ?2",
            )
            .bind(before.map(|b| b.to_string()))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.into_iter().map(action).collect()
        })
    }

    fn all_orgs(&self, limit: i64) -> StoreFuture<'_, Vec<Org>> {
        Box::pin(async move {
            let rows: Vec<(String, String, Option<String>)> =
                sqlx::query_as("SELECT id, name, parent_id FROM keel_orgs ORDER BY created_at, id LIMIT ?")
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
            rows.into_iter()
                .map(|(i, name, p)| {
                    Ok(Org {
                        id: org_id("keel_orgs.id", &i)?,
                        name,
                        parent_id: p.map(|p| org_id("keel_orgs.parent_id", &p)).transpose()?,
                    })
                })
                .collect()
        })
    }

    fn org_members(&self, org: OrgId) -> StoreFuture<'_, Vec<OrgMember>> {
        Box::pin(async move {
            let rows: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT m.user_id, u.email, m.role FROM keel_memberships m JOIN keel_users u ON u.id = m.user_id
                 WHERE m.org_id = ? ORDER BY u.email",
            )
            .bind(org.to_string())
            .fetch_all(&self.pool)
            .await?;
            rows.into_iter()
                .map(|(u, e, r)| {
                    Ok(OrgMember {
                        user_id: user_id("keel_memberships.user_id", &u)?,
                        email: email("keel_users.email", &e)?,
                        role: role("keel_memberships.role", &r)?,
                    })
                })
                .collect()
        })
    }
}

type ActionRow = (String, String, String, String, String, i64, Option<String>);

fn action(r: ActionRow) -> Result<OperatorAction, TenancyError> {
    Ok(OperatorAction {
        id: parse_uuid("keel_operator_actions.id", &r.0)?,
        operator_id: user_id("keel_operator_actions.operator_id", &r.1)?,
        action: r.2,
        target: r.3,
        detail: detail("keel_operator_actions.detail", &r.4)?,
        at: from_ms("keel_operator_actions.at", r.5)?,
        remote_addr: r.6,
    })
}
