//! Users and their role memberships; a membership's role applies to the org and all its
//! descendants.

use crate::password::{check_password_off_thread, hash_password, verify_password};
use crate::{Role, Tenancy, TenancyError};
use keel_ids::{Email, OrgId, UserId};

/// A user as stored.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// Its id.
    pub id: UserId,
    /// Its normalised address.
    pub email: Email,
    /// Argon2id PHC string; `None` for a user who cannot sign in with a password.
    pub password_hash: Option<String>,
}

/// A role held in one org (and so in its descendants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// The org the role is held in.
    pub org_id: OrgId,
    /// The role.
    pub role: Role,
}

impl Tenancy {
    /// Creates a user. The password (if any) must pass the policy ([`crate::check_password`],
    /// judged with the address as a guess an attacker would try) and is hashed with Argon2id
    /// before it is stored.
    pub async fn create_user(&self, email: &Email, password: Option<&str>) -> Result<UserId, TenancyError> {
        let hash = match password {
            Some(p) => {
                check_password_off_thread(p, Some(email)).await?;
                Some(hash_password(p).await?)
            }
            None => None,
        };
        let id = UserId::generate();
        self.store.insert_user(id, email, hash.as_deref()).await?;
        Ok(id)
    }

    /// One user by (normalised) email address.
    pub async fn user_by_email(&self, email: &Email) -> Result<Option<UserRecord>, TenancyError> {
        self.store.user_by_email(email).await
    }

    /// One user by id.
    pub async fn user(&self, id: UserId) -> Result<Option<UserRecord>, TenancyError> {
        self.store.user_by_id(id).await
    }

    /// The user id when the password matches; `None` for a wrong password or unknown email
    /// (indistinguishable by design, also in timing).
    pub async fn authenticate(&self, email: &Email, password: &str) -> Result<Option<UserId>, TenancyError> {
        let user = self.user_by_email(email).await?;
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let ok = verify_password(password, hash.as_deref()).await;
        Ok(if ok { user.map(|u| u.id) } else { None })
    }

    /// Sets a user's password (the same policy as [`Tenancy::create_user`]).
    pub async fn set_password(&self, user: UserId, password: &str) -> Result<(), TenancyError> {
        let record = self.user(user).await?.ok_or_else(|| TenancyError::UnknownUser(user.to_string()))?;
        check_password_off_thread(password, Some(&record.email)).await?;
        let hash = hash_password(password).await?;
        if !self.store.set_password_hash(user, &hash).await? {
            return Err(TenancyError::UnknownUser(user.to_string()));
        }
        Ok(())
    }

    /// Grants `role` in `org` (and so in its descendants); replaces an existing role there.
    pub async fn add_membership(&self, user: UserId, org: OrgId, role: Role) -> Result<(), TenancyError> {
        if self.org(org).await?.is_none() {
            return Err(TenancyError::UnknownOrg(org.to_string()));
        }
        self.store.upsert_membership(user, org, role).await
    }

    /// The user's memberships, oldest first.
    pub async fn memberships(&self, user: UserId) -> Result<Vec<Membership>, TenancyError> {
        self.store.memberships(user).await
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
