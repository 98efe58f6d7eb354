//! Tenancy and identity: orgs form a tree, users hold role memberships that apply to an org and
//! all its descendants, browser sessions, bearer API tokens and password resets.
//!
//! Transport-free: keel-api turns these into cookies and headers, keel-ops into commands.
//! Secrets (session ids, API tokens, reset tokens) are random, shown once, and stored only as
//! SHA-256 hashes; passwords are hashed with Argon2id and must pass one rule
//! ([`check_password`]). Platform operators hold a grant beside the org roles, and every action
//! they take is logged ([`OperatorAction`]). Storage goes through [`TenancyStore`], one
//! implementation per backend.
#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod error;
mod operators;
mod orgs;
mod password;
mod resets;
mod role;
mod row;
mod schema;
mod secret;
mod sessions;
mod store;
mod tokens;
mod users;

pub use error::TenancyError;
pub use operators::{OperatorAction, OperatorGrant, OrgMember, TokenIdentity, TokenScope, MAX_ACTIVITY_PAGE};
pub use orgs::Org;
pub use password::{
    check_password, hash_password, verify_password, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, MIN_PASSWORD_SCORE,
};
pub use role::{Permission, Role};
pub use schema::{migrate, SCHEMA};
pub use secret::{hash_secret, new_secret};
pub use sessions::{NewSession, SessionInfo};
pub use store::{
    open as open_store, PgTenancyStore, SqliteTenancyStore, StoreFuture, StoredSession, StoredToken, TenancyStore,
};
pub use tokens::IssuedToken;
pub use users::{Membership, UserRecord};

use keel_storage::Db;
use std::sync::Arc;

/// The tenancy API over either backend: rules here, rows in a [`TenancyStore`].
#[derive(Clone, Debug)]
pub struct Tenancy {
    db: Db,
    store: Arc<dyn TenancyStore>,
}

impl Tenancy {
    /// Tenancy on `db`, through the store for its backend.
    pub fn new(db: Db) -> Self {
        let store = store::open(&db);
        Self { db, store }
    }

    /// Tenancy through a chosen store (a wrapper that records or fails calls, in tests).
    pub fn with_store(db: Db, store: Arc<dyn TenancyStore>) -> Self {
        Self { db, store }
    }

    /// The database this tenancy was opened on.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The store every call goes through.
    pub fn store(&self) -> &Arc<dyn TenancyStore> {
        &self.store
    }
}
