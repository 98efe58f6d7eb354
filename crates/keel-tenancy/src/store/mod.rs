//! The storage contract of tenancy: [`TenancyStore`], one implementation per backend
//! ([`PgTenancyStore`], [`SqliteTenancyStore`]), both held to one conformance suite (`tests/it`,
//! every case on SQLite and PostgreSQL).
//!
//! The store only moves rows: validation, hashing and secrets stay in [`crate::Tenancy`], so the
//! two implementations differ in SQL dialect and column types, never in rules. Row mapping is
//! strict: a value the code does not recognise (an unknown role, a malformed UUID, an
//! unrepresentable timestamp, an address that is not normalised) is an error naming the column,
//! never a default. Methods return boxed futures so [`crate::Tenancy`] can hold an
//! `Arc<dyn TenancyStore>` and tests can wrap one.

mod pg;
mod sqlite;

pub use pg::PgTenancyStore;
pub use sqlite::SqliteTenancyStore;

use crate::{Membership, OperatorAction, OperatorGrant, Org, OrgMember, Role, TenancyError, TokenScope, UserRecord};
use chrono::{DateTime, Utc};
use keel_ids::{Email, OrgId, UserId};
use keel_storage::{Backend, Db};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What every store method returns: a boxed, sendable future.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, TenancyError>> + Send + 'a>>;

/// A browser session as stored (the id itself is only ever held as its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The signed-in user.
    pub user_id: UserId,
    /// The org the session works in, if one was chosen.
    pub active_org: Option<OrgId>,
    /// When the session stops working unless it slides again.
    pub expires_at: DateTime<Utc>,
}

/// An API token as stored: its owner, the hash of its secret, whether it was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// The token's user.
    pub user_id: UserId,
    /// SHA-256 of the secret part, hex.
    pub secret_hash: String,
    /// True once revoked; a revoked token never resolves again.
    pub revoked: bool,
    /// What the token may do beyond the user's org roles.
    pub scope: TokenScope,
}

/// Orgs, users, memberships, sessions, API tokens and password resets, as rows.
pub trait TenancyStore: Send + Sync + std::fmt::Debug {
    /// Which backend this store talks to.
    fn backend(&self) -> Backend;

    /// Inserts an org (its parent, if any, already checked to exist).
    fn insert_org<'a>(&'a self, org: &'a Org) -> StoreFuture<'a, ()>;
    /// One org by id.
    fn org(&self, id: OrgId) -> StoreFuture<'_, Option<Org>>;
    /// The org itself, then its parent, up to the root, at most `max_depth + 1` ids.
    fn ancestors(&self, id: OrgId, max_depth: i64) -> StoreFuture<'_, Vec<OrgId>>;

    /// Inserts a user; [`TenancyError::EmailTaken`] when the address is already registered.
    fn insert_user<'a>(&'a self, id: UserId, email: &'a Email, password_hash: Option<&'a str>) -> StoreFuture<'a, ()>;
    /// One user by (normalised) email address.
    fn user_by_email<'a>(&'a self, email: &'a Email) -> StoreFuture<'a, Option<UserRecord>>;
    /// One user by id.
    fn user_by_id(&self, id: UserId) -> StoreFuture<'_, Option<UserRecord>>;
    /// Replaces a user's password hash; `false` when there is no such user.
    fn set_password_hash<'a>(&'a self, user: UserId, hash: &'a str) -> StoreFuture<'a, bool>;

    /// Grants `role` in `org`, replacing the user's existing role there.
    fn upsert_membership(&self, user: UserId, org: OrgId, role: Role) -> StoreFuture<'_, ()>;
    /// The user's memberships, oldest first.
    fn memberships(&self, user: UserId) -> StoreFuture<'_, Vec<Membership>>;

    /// Inserts a session under the hash of its id.
    fn insert_session<'a>(&'a self, id_hash: &'a str, session: &'a StoredSession) -> StoreFuture<'a, ()>;
    /// The session if it exists and expires after `now`.
    fn read_session<'a>(&'a self, id_hash: &'a str, now: DateTime<Utc>) -> StoreFuture<'a, Option<StoredSession>>;
    /// Moves the expiry to `new_expiry` if the session is live at `now` and expires before
    /// `threshold` (so concurrent callers slide it once); the slid session, or `None`.
    fn slide_session<'a>(
        &'a self,
        id_hash: &'a str,
        new_expiry: DateTime<Utc>,
        now: DateTime<Utc>,
        threshold: DateTime<Utc>,
    ) -> StoreFuture<'a, Option<StoredSession>>;
    /// Switches the session's active org.
    fn set_active_org<'a>(&'a self, id_hash: &'a str, org: OrgId) -> StoreFuture<'a, ()>;
    /// Deletes the session (signing out); deleting an unknown one is harmless.
    fn delete_session<'a>(&'a self, id_hash: &'a str) -> StoreFuture<'a, ()>;

    /// Inserts an API token; [`TenancyError::UnknownUser`] when the user does not exist.
    fn insert_token<'a>(
        &'a self,
        id: uuid::Uuid,
        user: UserId,
        secret_hash: &'a str,
        scope: TokenScope,
    ) -> StoreFuture<'a, ()>;
    /// One token by id.
    fn token(&self, id: uuid::Uuid) -> StoreFuture<'_, Option<StoredToken>>;
    /// Marks a token revoked at `now` (keeping an earlier revocation); `false` when unknown.
    fn revoke_token(&self, id: uuid::Uuid, now: DateTime<Utc>) -> StoreFuture<'_, bool>;

    /// Inserts a reset token's hash for `user`, usable until `expires_at`.
    fn insert_reset<'a>(&'a self, token_hash: &'a str, user: UserId, expires_at: DateTime<Utc>) -> StoreFuture<'a, ()>;
    /// The user an unused reset that is still valid at `now` belongs to (a read: nothing is spent).
    fn reset_owner<'a>(&'a self, token_hash: &'a str, now: DateTime<Utc>) -> StoreFuture<'a, Option<UserRecord>>;
    /// In one transaction: marks the reset used (if unused and unexpired at `now`), sets the
    /// user's password hash and deletes every session of the user. The user, or `None` when the
    /// token is unknown, used or expired (then nothing changed).
    fn use_reset<'a>(
        &'a self,
        token_hash: &'a str,
        password_hash: &'a str,
        now: DateTime<Utc>,
    ) -> StoreFuture<'a, Option<UserId>>;
    /// Deletes a reset that was never used.
    fn delete_unused_reset<'a>(&'a self, token_hash: &'a str) -> StoreFuture<'a, ()>;

    /// Grants the operator role at `at`; `false` when already granted (nothing changes);
    /// [`TenancyError::UnknownUser`] when the user does not exist.
    fn grant_operator(&self, user: UserId, by: Option<UserId>, at: DateTime<Utc>) -> StoreFuture<'_, bool>;
    /// Removes the grant; `false` when there was none.
    fn revoke_operator(&self, user: UserId) -> StoreFuture<'_, bool>;
    /// Whether the user holds the grant.
    fn is_operator(&self, user: UserId) -> StoreFuture<'_, bool>;
    /// Every grant with the operator's address, oldest first.
    fn operators(&self) -> StoreFuture<'_, Vec<OperatorGrant>>;
    /// Appends an entry to the activity log.
    fn insert_operator_action<'a>(&'a self, entry: &'a OperatorAction) -> StoreFuture<'a, ()>;
    /// Log entries newest first (by id), older than `before` when given, at most `limit`.
    fn operator_actions(&self, before: Option<uuid::Uuid>, limit: i64) -> StoreFuture<'_, Vec<OperatorAction>>;
    /// Every org, oldest first, at most `limit`.
    fn all_orgs(&self, limit: i64) -> StoreFuture<'_, Vec<Org>>;
    /// The direct members of an org, by address.
    fn org_members(&self, org: OrgId) -> StoreFuture<'_, Vec<OrgMember>>;
}

/// The store for a database.
pub fn open(db: &Db) -> Arc<dyn TenancyStore> {
    match db {
        Db::Postgres(p) => Arc::new(PgTenancyStore::new(p.clone())),
        Db::Sqlite(p) => Arc::new(SqliteTenancyStore::new(p.clone())),
    }
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}
