//! Tenancy and identity: orgs form a tree, users hold role memberships that apply to an org and
//! all its descendants, browser sessions, bearer API tokens and password resets.
//!
//! Transport-free: keel-api turns these into cookies and headers, keel-ops into commands.
//! Secrets (session ids, API tokens, reset tokens) are random, shown once, and stored only as
//! SHA-256 hashes; passwords are hashed with Argon2id.

mod error;
mod orgs;
mod password;
mod resets;
mod role;
mod row;
mod secret;
mod sessions;
mod tokens;
mod users;

mod schema;
pub use error::TenancyError;
pub use orgs::Org;
pub use password::{hash_password, verify_password, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};
pub use role::{Permission, Role};
pub use schema::{migrate, SCHEMA};
pub use secret::{hash_secret, new_secret};
pub use sessions::{NewSession, SessionInfo};
pub use tokens::IssuedToken;
pub use users::{Membership, UserRecord};

use keel_storage::Db;

/// The tenancy store over either backend.
#[derive(Clone, Debug)]
pub struct Tenancy {
    db: Db,
}

impl Tenancy {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}
