//! [`PgTenancyStore`]: tenancy on PostgreSQL (native `uuid` and `timestamptz` columns).

use super::{is_foreign_key_violation, is_unique_violation, StoreFuture, StoredSession, StoredToken, TenancyStore};
use crate::row::{email, role, scope};
use crate::{Membership, OperatorAction, OperatorGrant, Org, OrgMember, Role, TenancyError, TokenScope, UserRecord};
use chrono::{DateTime, Utc};
use keel_ids::{Email, OrgId, UserId};
use keel_storage::Backend;
use sqlx::PgPool;
use uuid::Uuid;

/// Tenancy's rows in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgTenancyStore {
    pool: PgPool,
}

impl PgTenancyStore {
    /// A store over `pool` (tenancy's schema installed by [`crate::migrate`]).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

type UserRow = (Uuid, String, Option<String>);
type SessionRow = (Uuid, Option<Uuid>, DateTime<Utc>);

fn user(r: UserRow) -> Result<UserRecord, TenancyError> {
    Ok(UserRecord { id: UserId::from_uuid(r.0), email: email("keel_users.email", &r.1)?, password_hash: r.2 })
}

fn session(r: SessionRow) -> StoredSession {
    StoredSession { user_id: UserId::from_uuid(r.0), active_org: r.1.map(OrgId::from_uuid), expires_at: r.2 }
}

const ANCESTORS: &str = "WITH RECURSIVE up(id, parent_id, depth) AS (
        SELECT id, parent_id, 0 FROM keel_orgs WHERE id = $1
        UNION ALL
        SELECT o.id, o.parent_id, up.depth + 1 FROM keel_orgs o JOIN up ON o.id = up.parent_id WHERE up.depth < $2
    ) SELECT id FROM up ORDER BY depth";

impl TenancyStore for PgTenancyStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn insert_org<'a>(&'a self, org: &'a Org) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query("INSERT INTO keel_orgs (id, name, parent_id) VALUES ($1, $2, $3)")
                .bind(org.id.as_uuid())
                .bind(&org.name)
                .bind(org.parent_id.map(|p| p.as_uuid()))
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn org(&self, id: OrgId) -> StoreFuture<'_, Option<Org>> {
        Box::pin(async move {
            let row: Option<(Uuid, String, Option<Uuid>)> =
                sqlx::query_as("SELECT id, name, parent_id FROM keel_orgs WHERE id = $1")
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?;
            Ok(row.map(|(i, name, p)| Org { id: OrgId::from_uuid(i), name, parent_id: p.map(OrgId::from_uuid) }))
        })
    }

    fn ancestors(&self, id: OrgId, max_depth: i64) -> StoreFuture<'_, Vec<OrgId>> {
        Box::pin(async move {
            let ids: Vec<Uuid> =
                sqlx::query_scalar(ANCESTORS).bind(id.as_uuid()).bind(max_depth).fetch_all(&self.pool).await?;
            Ok(ids.into_iter().map(OrgId::from_uuid).collect())
        })
    }

    fn insert_user<'a>(&'a self, id: UserId, email: &'a Email, password_hash: Option<&'a str>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let res = sqlx::query("INSERT INTO keel_users (id, email, password_hash) VALUES ($1, $2, $3)")
                .bind(id.as_uuid())
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
                sqlx::query_as("SELECT id, email, password_hash FROM keel_users WHERE email = $1")
                    .bind(email.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
            row.map(user).transpose()
        })
    }

    fn user_by_id(&self, id: UserId) -> StoreFuture<'_, Option<UserRecord>> {
        Box::pin(async move {
            let row: Option<UserRow> = sqlx::query_as("SELECT id, email, password_hash FROM keel_users WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
            row.map(user).transpose()
        })
    }

    fn set_password_hash<'a>(&'a self, user: UserId, hash: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let n = sqlx::query("UPDATE keel_users SET password_hash = $1 WHERE id = $2")
                .bind(hash)
                .bind(user.as_uuid())
                .execute(&self.pool)
                .await?
                .rows_affected();
            Ok(n > 0)
        })
    }

    fn upsert_membership(&self, user: UserId, org: OrgId, role: Role) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO keel_memberships (user_id, org_id, role) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id, org_id) DO UPDATE SET role = excluded.role",
            )
            .bind(user.as_uuid())
            .bind(org.as_uuid())
            .bind(role.as_str())
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn memberships(&self, user: UserId) -> StoreFuture<'_, Vec<Membership>> {
        Box::pin(async move {
            let rows: Vec<(Uuid, String)> = sqlx::query_as(
                "SELECT org_id, role FROM keel_memberships WHERE user_id = $1 ORDER BY created_at, org_id",
            )
            .bind(user.as_uuid())
            .fetch_all(&self.pool)
            .await?;
            rows.into_iter()
                .map(|(o, r)| Ok(Membership { org_id: OrgId::from_uuid(o), role: role("keel_memberships.role", &r)? }))
                .collect()
        })
    }

    fn insert_session<'a>(&'a self, id_hash: &'a str, s: &'a StoredSession) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO keel_sessions (id_hash, user_id, active_org_id, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(id_hash)
            .bind(s.user_id.as_uuid())
            .bind(s.active_org.map(|o| o.as_uuid()))
            .bind(s.expires_at)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn read_session<'a>(&'a self, id_hash: &'a str, now: DateTime<Utc>) -> StoreFuture<'a, Option<StoredSession>> {
        Box::pin(async move {
            let row: Option<SessionRow> = sqlx::query_as(
                "SELECT user_id, active_org_id, expires_at FROM keel_sessions WHERE id_hash = $1 AND expires_at > $2",
            )
            .bind(id_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.map(session))
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
                "UPDATE keel_sessions SET expires_at = $2 WHERE id_hash = $1 AND expires_at > $3 AND expires_at < $4
                 RETURNING user_id, active_org_id, expires_at",
            )
            .bind(id_hash)
            .bind(new_expiry)
            .bind(now)
            .bind(threshold)
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.map(session))
        })
    }

    fn set_active_org<'a>(&'a self, id_hash: &'a str, org: OrgId) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query("UPDATE keel_sessions SET active_org_id = $1 WHERE id_hash = $2")
                .bind(org.as_uuid())
                .bind(id_hash)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn delete_session<'a>(&'a self, id_hash: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query("DELETE FROM keel_sessions WHERE id_hash = $1").bind(id_hash).execute(&self.pool).await?;
            Ok(())
        })
    }

    fn insert_token<'a>(&'a self, id: Uuid, user: UserId, secret_hash: &'a str, sc: TokenScope) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let res =
                sqlx::query("INSERT INTO keel_api_tokens (id, user_id, secret_hash, scope) VALUES ($1, $2, $3, $4)")
                    .bind(id)
                    .bind(user.as_uuid())
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
            let row: Option<(Uuid, String, bool, String)> = sqlx::query_as(
                "SELECT user_id, secret_hash, revoked_at IS NOT NULL, scope FROM keel_api_tokens WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
            row.map(|(u, secret_hash, revoked, sc)| {
                Ok(StoredToken {
                    user_id: UserId::from_uuid(u),
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
            let n = sqlx::query("UPDATE keel_api_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected();
            Ok(n > 0)
        })
    }

    fn insert_reset<'a>(&'a self, token_hash: &'a str, user: UserId, expires_at: DateTime<Utc>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query("INSERT INTO keel_password_resets (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
                .bind(token_hash)
                .bind(user.as_uuid())
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn reset_owner<'a>(&'a self, token_hash: &'a str, now: DateTime<Utc>) -> StoreFuture<'a, Option<UserRecord>> {
        Box::pin(async move {
            let row: Option<UserRow> = sqlx::query_as(
                "SELECT u.id, u.email, u.password_hash FROM keel_password_resets r JOIN keel_users u ON u.id = r.user_id
                 WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
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
            let mut tx = self.pool.begin().await?;
            let user: Option<Uuid> = sqlx::query_scalar(
                "UPDATE keel_password_resets SET used_at = $2
                 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
                 RETURNING user_id",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(user) = user else { return Ok(None) };
            sqlx::query("UPDATE keel_users SET password_hash = $1 WHERE id = $2")
                .bind(password_hash)
                .bind(user)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM keel_sessions WHERE user_id = $1").bind(user).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(Some(UserId::from_uuid(user)))
        })
    }

    fn delete_unused_reset<'a>(&'a self, token_hash: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query("DELETE FROM keel_password_resets WHERE token_hash = $1 AND used_at IS NULL")
                .bind(token_hash)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn grant_operator(&self, user: UserId, by: Option<UserId>, at: DateTime<Utc>) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let res = sqlx::query(
                "INSERT INTO keel_operators (user_id, granted_at, granted_by) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id) DO NOTHING",
            )
            .bind(user.as_uuid())
            .bind(at)
            .bind(by.map(|b| b.as_uuid()))
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
            let n = sqlx::query("DELETE FROM keel_operators WHERE user_id = $1")
                .bind(user.as_uuid())
                .execute(&self.pool)
                .await?
                .rows_affected();
            Ok(n > 0)
        })
    }

    fn is_operator(&self, user: UserId) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM keel_operators WHERE user_id = $1")
                .bind(user.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
            Ok(found.is_some())
        })
    }

    fn operators(&self) -> StoreFuture<'_, Vec<OperatorGrant>> {
        Box::pin(async move {
            let rows: Vec<(Uuid, String, DateTime<Utc>, Option<Uuid>)> = sqlx::query_as(
                "SELECT o.user_id, u.email, o.granted_at, o.granted_by FROM keel_operators o
                 JOIN keel_users u ON u.id = o.user_id ORDER BY o.granted_at, o.user_id",
            )
            .fetch_all(&self.pool)
            .await?;
            rows.into_iter()
                .map(|(u, e, at, by)| {
                    Ok(OperatorGrant {
                        user_id: UserId::from_uuid(u),
                        email: email("keel_users.email", &e)?,
                        granted_at: at,
                        granted_by: by.map(UserId::from_uuid),
                    })
                })
                .collect()
        })
    }

    fn insert_operator_action<'a>(&'a self, a: &'a OperatorAction) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO keel_operator_actions (id, operator_id, action, target, detail, at, remote_addr)
                 VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)",
            )
            .bind(a.id)
            .bind(a.operator_id.as_uuid())
            .bind(&a.action)
            .bind(&a.target)
            .bind(a.detail.to_string())
            .bind(a.at)
            .bind(a.remote_addr.as_deref())
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn operator_actions(&self, before: Option<Uuid>, limit: i64) -> StoreFuture<'_, Vec<OperatorAction>> {
        Box::pin(async move {
            let rows: Vec<ActionRow> = sqlx::query_as(
                "SELECT id, operator_id, action, target, detail::text, at, remote_addr FROM keel_operator_actions
                 WHERE $1::uuid IS NULL OR id < $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(before)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.into_iter()
                .map(|r| {
                    Ok(OperatorAction {
                        id: r.0,
                        operator_id: UserId::from_uuid(r.1),
                        action: r.2,
                        target: r.3,
                        detail: crate::row::detail("keel_operator_actions.detail", &r.4)?,
                        at: r.5,
                        remote_addr: r.6,
                    })
                })
                .collect()
        })
    }

    fn all_orgs(&self, limit: i64) -> StoreFuture<'_, Vec<Org>> {
        Box::pin(async move {
            let rows: Vec<(Uuid, String, Option<Uuid>)> =
                sqlx::query_as("SELECT id, name, parent_id FROM keel_orgs ORDER BY created_at, id LIMIT $1")
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
            Ok(rows
                .into_iter()
                .map(|(i, name, p)| Org { id: OrgId::from_uuid(i), name, parent_id: p.map(OrgId::from_uuid) })
                .collect())
        })
    }

    fn org_members(&self, org: OrgId) -> StoreFuture<'_, Vec<OrgMember>> {
        Box::pin(async move {
            let rows: Vec<(Uuid, String, String)> = sqlx::query_as(
                "SELECT m.user_id, u.email, m.role FROM keel_memberships m JOIN keel_users u ON u.id = m.user_id
                 WHERE m.org_id = $1 ORDER BY u.email",
            )
            .bind(org.as_uuid())
            .fetch_all(&self.pool)
            .await?;
            rows.into_iter()
                .map(|(u, e, r)| {
                    Ok(OrgMember {
                        user_id: UserId::from_uuid(u),
                        email: email("keel_users.email", &e)?,
                        role: role("keel_memberships.role", &r)?,
                    })
                })
                .collect()
        })
    }
}

type ActionRow = (Uuid, Uuid, String, String, String, DateTime<Utc>, Option<String>);
