//! The business tables of a PostgreSQL database as backup sees them: every ordinary or
//! partitioned table outside the system schemas, except migration bookkeeping (a host's
//! `_sqlx_migrations`, the components' `keel_<component>_migrations`) and tables owned by
//! extensions; their foreign keys, for ordering inserts; and the columns a restore writes.

use super::manifest::Column;
use crate::output::OpsError;
use sqlx::{self, PgConnection, Row};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
pub(crate) struct BizTable {
    pub(crate) oid: i64,
    pub(crate) schema: String,
    pub(crate) name: String,
    pub(crate) qname: String,
    pub(crate) partitioned: bool,
    /// `ORDER BY` terms giving a stable row order (primary key; text columns in "C" collation).
    pub(crate) order_by: Vec<String>,
    pub(crate) estimate: i64,
}

impl BizTable {
    pub(crate) fn full_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
    /// `ONLY` for plain tables so inheritance children are not read twice; a partitioned
    /// table's rows live in its partitions, which are not listed separately.
    pub(crate) fn source(&self) -> String {
        if self.partitioned {
            self.qname.clone()
        } else {
            format!("ONLY {}", self.qname)
        }
    }
}

/// A foreign key between two business tables, by column lists (quoted names).
#[derive(Debug, Clone)]
pub(crate) struct Fk {
    pub(crate) child: i64,
    pub(crate) parent: i64,
    pub(crate) columns: Vec<String>,
    pub(crate) ref_columns: Vec<String>,
}

pub(crate) fn db_error(what: &str, e: sqlx::Error) -> OpsError {
    let err = keel_storage::StorageError::Query(e);
    let text = err.to_string();
    // With row_security off, PostgreSQL refuses rather than silently filtering rows out.
    let hint = if text.contains("row-level security") {
        ". Fix: run backups as a role with BYPASSRLS (or the superuser), so no policy can hide rows"
    } else {
        ""
    };
    if err.is_unavailable() {
        OpsError::unavailable(format!("{what}: {text}{hint}"))
    } else {
        OpsError::failed(format!("{what}: {text}{hint}"))
    }
}

/// A backup must see every row: with `row_security = off` a policy that would hide rows makes
/// the query fail instead.
pub(crate) async fn all_rows_or_error(conn: &mut PgConnection) -> Result<(), OpsError> {
    sqlx::query("SET LOCAL row_security = off")
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(|e| db_error("setting row_security", e))
}

pub(crate) async fn list(conn: &mut PgConnection) -> Result<Vec<BizTable>, OpsError> {
    let rows = sqlx::query(
        "SELECT c.oid::int8 AS oid, n.nspname::text AS schema, c.relname::text AS name,
                quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qname, c.relkind = 'p' AS partitioned,
                ARRAY(SELECT quote_ident(a.attname) || CASE WHEN a.attcollation <> 0 THEN ' COLLATE \"C\"' ELSE '' END
                      FROM pg_index i, unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord), pg_attribute a
                      WHERE i.indrelid = c.oid AND i.indisprimary AND a.attrelid = c.oid AND a.attnum = k.attnum
                      ORDER BY k.ord) AS pk,
                greatest(c.reltuples, 0)::int8 AS estimate
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_(toast_)?temp_'
           AND c.relname <> '_sqlx_migrations' AND c.relname !~ '^keel_[a-z0-9_]+_migrations$'
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
         ORDER BY 2, 3",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| db_error("listing tables", e))?;
    rows.iter()
        .map(|r| {
            let pk: Vec<String> = r.try_get("pk").map_err(|e| db_error("listing tables", e))?;
            let order_by = if pk.is_empty() {
                // No key: order by the whole row's text, which is total and stable.
                vec!["row_to_json(t)::text COLLATE \"C\"".to_owned()]
            } else {
                pk
            };
            Ok(BizTable {
                oid: r.try_get("oid").map_err(|e| db_error("listing tables", e))?,
                schema: r.try_get("schema").map_err(|e| db_error("listing tables", e))?,
                name: r.try_get("name").map_err(|e| db_error("listing tables", e))?,
                qname: r.try_get("qname").map_err(|e| db_error("listing tables", e))?,
                partitioned: r.try_get("partitioned").map_err(|e| db_error("listing tables", e))?,
                order_by,
                estimate: r.try_get("estimate").map_err(|e| db_error("listing tables", e))?,
            })
        })
        .collect()
}

pub(crate) async fn foreign_keys(conn: &mut PgConnection) -> Result<Vec<Fk>, OpsError> {
    let rows = sqlx::query(
        "SELECT c.conrelid::int8 AS child, c.confrelid::int8 AS parent,
                ARRAY(SELECT quote_ident(a.attname) FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o) AS cols,
                ARRAY(SELECT quote_ident(a.attname) FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
                      JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o) AS refcols
         FROM pg_constraint c WHERE c.contype = 'f' AND c.conparentid = 0",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| db_error("listing foreign keys", e))?;
    rows.iter()
        .map(|r| {
            let g = |e| db_error("listing foreign keys", e);
            Ok(Fk {
                child: r.try_get("child").map_err(g)?,
                parent: r.try_get("parent").map_err(g)?,
                columns: r.try_get("cols").map_err(g)?,
                ref_columns: r.try_get("refcols").map_err(g)?,
            })
        })
        .collect()
}

/// Referenced tables first. Self-references are handled row by row at restore time; a cycle
/// between tables keeps its members in name order (their constraints must then be DEFERRABLE).
pub(crate) fn fk_order(tables: &[BizTable], fks: &[Fk]) -> Vec<BizTable> {
    let ids: BTreeSet<i64> = tables.iter().map(|t| t.oid).collect();
    let mut parents: BTreeMap<i64, BTreeSet<i64>> = tables.iter().map(|t| (t.oid, BTreeSet::new())).collect();
    for fk in fks.iter().filter(|f| f.child != f.parent && ids.contains(&f.child) && ids.contains(&f.parent)) {
        parents.entry(fk.child).or_default().insert(fk.parent);
    }
    let mut done: BTreeSet<i64> = BTreeSet::new();
    let mut out = Vec::with_capacity(tables.len());
    while out.len() < tables.len() {
        let ready: Vec<&BizTable> = tables
            .iter()
            .filter(|t| !done.contains(&t.oid) && parents[&t.oid].iter().all(|p| done.contains(p)))
            .collect();
        let batch = if ready.is_empty() {
            // A cycle: take the first remaining table and carry on.
            tables.iter().filter(|t| !done.contains(&t.oid)).take(1).collect()
        } else {
            ready
        };
        for t in batch {
            done.insert(t.oid);
            out.push(t.clone());
        }
    }
    out
}

/// The columns a restore writes (generated columns are computed, not written), and whether an
/// identity column needs `OVERRIDING SYSTEM VALUE`.
pub(crate) async fn insert_columns(conn: &mut PgConnection, oid: i64) -> Result<(Vec<String>, bool), OpsError> {
    let rows = sqlx::query(
        "SELECT quote_ident(attname) AS col, attidentity = 'a' AS always FROM pg_attribute
         WHERE attrelid = $1::int8::oid AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
    )
    .bind(oid)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| db_error("reading columns", e))?;
    let mut cols = Vec::new();
    let mut overriding = false;
    for r in rows {
        cols.push(r.try_get::<String, _>("col").map_err(|e| db_error("reading columns", e))?);
        overriding |= r.try_get::<bool, _>("always").map_err(|e| db_error("reading columns", e))?;
    }
    Ok((cols, overriding))
}

/// Every column of a table as `row_to_json` writes it (generated ones included), with its type.
pub(crate) async fn row_columns(conn: &mut PgConnection, oid: i64) -> Result<Vec<Column>, OpsError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
         WHERE attrelid = $1::int8::oid AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    )
    .bind(oid)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| db_error("reading column types", e))?;
    Ok(rows.into_iter().map(|(name, ty)| Column { name, ty }).collect())
}
