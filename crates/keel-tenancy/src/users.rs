//! Users and their role memberships; a membership's role applies to the org and all its
//! descendants.

use crate::password::{hash_password, verify_password};
use crate::row::uuid;
use crate::{Role, Tenancy, TenancyError};
use keel_ids::{Email, OrgId, UserId};
use keel_storage::{sqlx, Db};

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: UserId,
    pub email: Email,
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub org_id: OrgId,
    pub role: Role,
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl Tenancy {
    /// Creates a user; the password (if any) is hashed with Argon2id before it is stored.
    pub async fn create_user(&self, email: &Email, password: Option<&str>) -> Result<UserId, TenancyError> {
        let hash = match password {
            Some(p) => Some(hash_password(p).await?),
            None => None,
        };
        let id = UserId::generate();
        let res = match self.db() {
            Db::Postgres(p) => sqlx::query("INSERT INTO keel_users (id, email, password_hash) VALUES ($1, $2, $3)")
                .bind(id.as_uuid())
                .bind(email.as_str())
                .bind(&hash)
                .execute(p)
                .await
                .map(drop),
            Db::Sqlite(p) => sqlx::query("INSERT INTO keel_users (id, email, password_hash) VALUES (?, ?, ?)")
                .bind(id.to_string())
                .bind(email.as_str())
                .bind(&hash)
                .execute(p)
                .await
                .map(drop),
        };
        match res {
            Err(e) if is_unique_violation(&e) => Err(TenancyError::EmailTaken),
            other => other.map(|()| id).map_err(Into::into),
        }
    }

    pub async fn user_by_email(&self, email: &Email) -> Result<Option<UserRecord>, TenancyError> {
        let row = match self.db() {
            Db::Postgres(p) => sqlx::query_as::<_, (uuid::Uuid, String, Option<String>)>(
                "SELECT id, email, password_hash FROM keel_users WHERE email = $1",
            )
            .bind(email.as_str())
            .fetch_optional(p)
            .await?
            .map(|(i, e, h)| (i.to_string(), e, h)),
            Db::Sqlite(p) => {
                sqlx::query_as::<_, (String, String, Option<String>)>(
                    "SELECT id, email, password_hash FROM keel_users WHERE email = ?",
                )
                .bind(email.as_str())
                .fetch_optional(p)
                .await?
            }
        };
        let Some((id, e, h)) = row else { return Ok(None) };
        let email = Email::parse(&e).map_err(|err| TenancyError::invalid("email", err.to_string()))?;
        Ok(Some(UserRecord { id: UserId::from_uuid(uuid(&id)?), email, password_hash: h }))
    }

    /// The user id when the password matches; `None` for a wrong password or unknown email
    /// (indistinguishable by design, also in timing).
    pub async fn authenticate(&self, email: &Email, password: &str) -> Result<Option<UserId>, TenancyError> {
        let user = self.user_by_email(email).await?;
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let ok = verify_password(password, hash.as_deref()).await;
        Ok(if ok { user.map(|u| u.id) } else { None })
    }

    pub async fn set_password(&self, user: UserId, password: &str) -> Result<(), TenancyError> {
        let hash = hash_password(password).await?;
        let n = match self.db() {
            Db::Postgres(p) => sqlx::query("UPDATE keel_users SET password_hash = $1 WHERE id = $2")
                .bind(hash)
                .bind(user.as_uuid())
                .execute(p)
                .await?
                .rows_affected(),
            Db::Sqlite(p) => sqlx::query("UPDATE keel_users SET password_hash = ? WHERE id = ?")
                .bind(hash)
                .bind(user.to_string())
                .execute(p)
                .await?
                .rows_affected(),
        };
        if n == 0 {
            return Err(TenancyError::UnknownUser(user.to_string()));
        }
        Ok(())
    }

    /// Grants `role` in `org` (and so in its descendants); replaces an existing role there.
    pub async fn add_membership(&self, user: UserId, org: OrgId, role: Role) -> Result<(), TenancyError> {
        if self.org(org).await?.is_none() {
            return Err(TenancyError::UnknownOrg(org.to_string()));
        }
        const UPSERT: &str = "INSERT INTO keel_memberships (user_id, org_id, role) VALUES ($1, $2, $3)
             ON CONFLICT (user_id, org_id) DO UPDATE SET role = excluded.role";
        match self.db() {
            Db::Postgres(p) => {
                sqlx::query(UPSERT).bind(user.as_uuid()).bind(org.as_uuid()).bind(role.as_str()).execute(p).await?;
            }
            Db::Sqlite(p) => {
                sqlx::query(&UPSERT.replace('$', "?"))
                    .bind(user.to_string())
                    .bind(org.to_string())
                    .bind(role.as_str())
                    .execute(p)
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn memberships(&self, user: UserId) -> Result<Vec<Membership>, TenancyError> {
        let rows: Vec<(String, String)> = match self.db() {
            Db::Postgres(p) => sqlx::query_as::<_, (uuid::Uuid, String)>(
                "SELECT org_id, role FROM keel_memberships WHERE user_id = $1 ORDER BY created_at, org_id",
            )
            .bind(user.as_uuid())
            .fetch_all(p)
            .await?
            .into_iter()
            .map(|(o, r)| (o.to_string(), r))
            .collect(),
            Db::Sqlite(p) => {
                sqlx::query_as(
                    "SELECT org_id, role FROM keel_memberships WHERE user_id = ? ORDER BY created_at, org_id",
                )
                .bind(user.to_string())
                .fetch_all(p)
                .await?
            }
        };
        rows.into_iter()
            .map(|(o, r)| {
                Ok(Membership {
                    org_id: OrgId::from_uuid(uuid(&o)?),
                    role: r.parse().map_err(|m: String| TenancyError::invalid("role", m))?,
                })
            })
            .collect()
    }

    /// The user's role in `org`: from a direct membership (fast path), else the strongest
    /// role held in any ancestor. `None` means the org is out of the user's reach.
    pub async fn role_in(&self, user: UserId, org: OrgId) -> Result<Option<Role>, TenancyError> {
        let memberships = self.memberships(user).await?;
        self.role_among(&memberships, org).await
    }

    /// [`Tenancy::role_in`] for a caller that already holds the user's memberships (as read by
    /// [`Tenancy::memberships`]), so choosing a default org and checking it is one read.
    pub async fn role_among(&self, memberships: &[Membership], org: OrgId) -> Result<Option<Role>, TenancyError> {
        if let Some(m) = memberships.iter().find(|m| m.org_id == org) {
            // A direct membership still inherits a stronger role from above.
            if m.role == Role::Owner {
                return Ok(Some(Role::Owner));
            }
        }
        if memberships.is_empty() {
            return Ok(None);
        }
        let chain = self.ancestors(org).await?;
        Ok(memberships.iter().filter(|m| chain.contains(&m.org_id)).map(|m| m.role).max())
    }
}
