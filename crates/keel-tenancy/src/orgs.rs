//! Organizations: a tree of tenants (a franchise parent with descendant orgs).

use crate::row::uuid;
use crate::{Tenancy, TenancyError};
use keel_ids::OrgId;
use keel_storage::{sqlx, Db};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub parent_id: Option<OrgId>,
}

/// Trees deeper than this are refused: deep enough for any franchise, and it bounds the walk.
pub(crate) const MAX_DEPTH: i64 = 32;

impl Tenancy {
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
        let id = OrgId::generate();
        match self.db() {
            Db::Postgres(p) => {
                sqlx::query("INSERT INTO keel_orgs (id, name, parent_id) VALUES ($1, $2, $3)")
                    .bind(id.as_uuid())
                    .bind(name)
                    .bind(parent.map(|p| p.as_uuid()))
                    .execute(p)
                    .await?;
            }
            Db::Sqlite(p) => {
                sqlx::query("INSERT INTO keel_orgs (id, name, parent_id) VALUES (?, ?, ?)")
                    .bind(id.to_string())
                    .bind(name)
                    .bind(parent.map(|p| p.to_string()))
                    .execute(p)
                    .await?;
            }
        }
        Ok(Org { id, name: name.to_owned(), parent_id: parent })
    }

    pub async fn org(&self, id: OrgId) -> Result<Option<Org>, TenancyError> {
        Ok(match self.db() {
            Db::Postgres(p) => {
                let row: Option<(uuid::Uuid, String, Option<uuid::Uuid>)> =
                    sqlx::query_as("SELECT id, name, parent_id FROM keel_orgs WHERE id = $1")
                        .bind(id.as_uuid())
                        .fetch_optional(p)
                        .await?;
                row.map(|(i, n, pid)| Org { id: OrgId::from_uuid(i), name: n, parent_id: pid.map(OrgId::from_uuid) })
            }
            Db::Sqlite(p) => {
                let row: Option<(String, String, Option<String>)> =
                    sqlx::query_as("SELECT id, name, parent_id FROM keel_orgs WHERE id = ?")
                        .bind(id.to_string())
                        .fetch_optional(p)
                        .await?;
                match row {
                    None => None,
                    Some((i, n, pid)) => Some(Org {
                        id: OrgId::from_uuid(uuid(&i)?),
                        name: n,
                        parent_id: pid.map(|s| uuid(&s).map(OrgId::from_uuid)).transpose()?,
                    }),
                }
            }
        })
    }

    /// The org itself, then its parent, up to the root (one recursive query).
    pub async fn ancestors(&self, id: OrgId) -> Result<Vec<OrgId>, TenancyError> {
        const Q: &str = "WITH RECURSIVE up(id, parent_id, depth) AS (
                SELECT id, parent_id, 0 FROM keel_orgs WHERE id = $1
                UNION ALL
                SELECT o.id, o.parent_id, up.depth + 1 FROM keel_orgs o JOIN up ON o.id = up.parent_id WHERE up.depth < $2
            ) SELECT id FROM up ORDER BY depth";
        Ok(match self.db() {
            Db::Postgres(p) => sqlx::query_scalar::<_, uuid::Uuid>(Q)
                .bind(id.as_uuid())
                .bind(MAX_DEPTH)
                .fetch_all(p)
                .await?
                .into_iter()
                .map(OrgId::from_uuid)
                .collect(),
            Db::Sqlite(p) => {
                let ids: Vec<String> = sqlx::query_scalar(&Q.replace("$1", "?1").replace("$2", "?2"))
                    .bind(id.to_string())
                    .bind(MAX_DEPTH)
                    .fetch_all(p)
                    .await?;
                ids.iter().map(|s| uuid(s).map(OrgId::from_uuid)).collect::<Result<_, _>>()?
            }
        })
    }
}
