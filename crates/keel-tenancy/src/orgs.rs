//! Organizations: a tree of tenants (a franchise parent with descendant orgs).

use crate::{Tenancy, TenancyError};
use keel_ids::OrgId;

/// An org: a tenant, possibly under a parent org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    /// Its id.
    pub id: OrgId,
    /// Its display name (1 to 200 characters).
    pub name: String,
    /// The org it belongs to, if any (a franchise's branch names the franchise).
    pub parent_id: Option<OrgId>,
}

/// Trees deeper than this are refused: deep enough for any franchise, and it bounds the walk.
pub(crate) const MAX_DEPTH: i64 = 32;

impl Tenancy {
    /// Creates an org named `name` (1 to 200 characters), under `parent` if given.
    pub async fn create_org(&self, name: &str, parent: Option<OrgId>) -> Result<Org, TenancyError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(TenancyError::invalid("name", "must be 1 to 200 characters"));
        }
        if let Some(p) = parent {
            if self.org(p).await?.is_none() {
                return Err(TenancyError::UnknownOrg(p.to_string()));
            }
            if self.ancestors(p).await?.len() as i64 >= MAX_DEPTH {
                return Err(TenancyError::invalid("parent", format!("org trees are at most {MAX_DEPTH} deep")));
            }
        }
        let org = Org { id: OrgId::generate(), name: name.to_owned(), parent_id: parent };
        self.store.insert_org(&org).await?;
        Ok(org)
    }

    /// One org by id.
    pub async fn org(&self, id: OrgId) -> Result<Option<Org>, TenancyError> {
        self.store.org(id).await
    }

    /// The org itself, then its parent, up to the root (one recursive query).
    pub async fn ancestors(&self, id: OrgId) -> Result<Vec<OrgId>, TenancyError> {
        self.store.ancestors(id, MAX_DEPTH).await
    }
}
