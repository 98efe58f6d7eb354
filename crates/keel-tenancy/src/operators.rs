//! Platform operators: a grant stored beside (not inside) the per-org roles, so
//! [`crate::Role::permits`] stays the one table of org permissions and an operator gains
//! nothing in any org through it. Operators steer the platform (jobs, schedules, limits); every
//! action they take is kept in the activity log ([`Tenancy::record_operator_action`]).

use crate::{Tenancy, TenancyError};
use chrono::{DateTime, Utc};
use keel_ids::{Email, OrgId, UserId};

/// Activity-log pages hold at most this many entries: a screenful for the console, and a bound
/// on what one request can make the database read.
pub const MAX_ACTIVITY_PAGE: u32 = 500;

/// What an API token may do beyond acting as its user in the user's orgs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenScope {
    /// The user's org roles, nothing more (every token issued without `--operator`).
    Org,
    /// Also the operator API, while the user holds an operator grant.
    Operator,
}

impl TokenScope {
    /// The stored spelling: `org` or `operator`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Org => "org",
            TokenScope::Operator => "operator",
        }
    }
}

/// Who a valid token acts for, and with which scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenIdentity {
    /// The token's user.
    pub user_id: UserId,
    /// The token's scope.
    pub scope: TokenScope,
}

/// An operator grant as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorGrant {
    /// The operator.
    pub user_id: UserId,
    /// Their address (shown masked: `Email`'s `Display`).
    pub email: Email,
    /// When the grant was made.
    pub granted_at: DateTime<Utc>,
    /// Who granted it; `None` from the command line (or once that user was deleted).
    pub granted_by: Option<UserId>,
}

/// One entry of the operator activity log.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorAction {
    /// Its id (UUIDv7: ordered by time, the keyset cursor of [`Tenancy::operator_actions`]).
    pub id: uuid::Uuid,
    /// The operator who acted.
    pub operator_id: UserId,
    /// What was done, e.g. `job.retry`, `queue.pause`, `operator.grant` (1 to 100 characters).
    pub action: String,
    /// What it was done to: a job id, a queue or task name, a user id (at most 500 characters).
    pub target: String,
    /// Details of the action as a JSON object (counts, the previous state, …).
    pub detail: serde_json::Value,
    /// When.
    pub at: DateTime<Utc>,
    /// The connection's peer address (never a forwarding header), when known.
    pub remote_addr: Option<String>,
}

/// A member of an org, as the operator console lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgMember {
    /// The user.
    pub user_id: UserId,
    /// Their address (shown masked: `Email`'s `Display`).
    pub email: Email,
    /// Their role in the org (held directly; inherited roles are the parent's members).
    pub role: crate::Role,
}

impl Tenancy {
    /// Grants `user` the operator role; `by` is the granting operator (`None` from the command
    /// line). `false` when the user already was an operator (the grant is unchanged);
    /// [`TenancyError::UnknownUser`] when there is no such user.
    pub async fn grant_operator(
        &self,
        user: UserId,
        by: Option<UserId>,
        now: DateTime<Utc>,
    ) -> Result<bool, TenancyError> {
        self.store.grant_operator(user, by, now).await
    }

    /// Revokes the operator role; `false` when the user was not an operator. Operator tokens
    /// of the user stop opening the operator API at once (the grant is checked on each use).
    pub async fn revoke_operator(&self, user: UserId) -> Result<bool, TenancyError> {
        self.store.revoke_operator(user).await
    }

    /// Whether `user` holds the operator role now.
    pub async fn is_operator(&self, user: UserId) -> Result<bool, TenancyError> {
        self.store.is_operator(user).await
    }

    /// Every operator, oldest grant first.
    pub async fn operators(&self) -> Result<Vec<OperatorGrant>, TenancyError> {
        self.store.operators().await
    }

    /// Adds an entry to the activity log. `action` must be 1 to 100 characters, `target` at
    /// most 500, `detail` a JSON object; the entry's id is assigned here.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_operator_action(
        &self,
        operator: UserId,
        action: &str,
        target: &str,
        detail: serde_json::Value,
        at: DateTime<Utc>,
        remote_addr: Option<String>,
    ) -> Result<OperatorAction, TenancyError> {
        if action.is_empty() || action.chars().count() > 100 {
            return Err(TenancyError::invalid("action", "must be 1 to 100 characters"));
        }
        if target.chars().count() > 500 {
            return Err(TenancyError::invalid("target", "must be at most 500 characters"));
        }
        if !detail.is_object() {
            return Err(TenancyError::invalid("detail", "must be a JSON object"));
        }
        let entry = OperatorAction {
            id: uuid::Uuid::now_v7(),
            operator_id: operator,
            action: action.to_owned(),
            target: target.to_owned(),
            detail,
            at,
            remote_addr,
        };
        self.store.insert_operator_action(&entry).await?;
        Ok(entry)
    }

    /// The activity log, newest first: at most `limit` entries (1 to [`MAX_ACTIVITY_PAGE`]),
    /// older than the entry `before` when given (the keyset cursor: the last id of the previous
    /// page).
    pub async fn operator_actions(
        &self,
        before: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<OperatorAction>, TenancyError> {
        if !(1..=MAX_ACTIVITY_PAGE).contains(&limit) {
            return Err(TenancyError::invalid("limit", format!("must be from 1 to {MAX_ACTIVITY_PAGE}")));
        }
        self.store.operator_actions(before, i64::from(limit)).await
    }

    /// Issues a token with the operator scope; refused (naming `user`) unless the user holds
    /// the operator role. The scope only works while the grant lasts.
    pub async fn issue_operator_token(&self, user: UserId) -> Result<crate::IssuedToken, TenancyError> {
        if !self.is_operator(user).await? {
            return Err(TenancyError::invalid(
                "user",
                "is not an operator; grant it first (`keel-ops operator grant EMAIL`)",
            ));
        }
        self.issue_scoped_token(user, TokenScope::Operator).await
    }

    /// Every org, as a flat list (each names its parent), oldest first, at most `limit`.
    pub async fn all_orgs(&self, limit: u32) -> Result<Vec<crate::Org>, TenancyError> {
        self.store.all_orgs(i64::from(limit.max(1))).await
    }

    /// The direct members of `org` with their roles, by address.
    pub async fn org_members(&self, org: OrgId) -> Result<Vec<OrgMember>, TenancyError> {
        self.store.org_members(org).await
    }
}
