//! Everything the lints look at, read from the PostgreSQL catalogs in one read-only snapshot.
//! The lints themselves are pure functions over this, so what they decide does not depend on
//! when each query ran.

use crate::output::OpsError;
use sqlx::{self, postgres::PgRow, PgPool, Postgres, Row, Transaction};
use std::collections::HashMap;

/// Schemas the audit never looks at, plus temporary schemas.
const USER_SCHEMA: &str =
    "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_(toast_)?temp_'";

/// Objects created by an extension belong to it, not to the application.
fn not_extension_member(catalog: &str, alias: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{catalog}'::regclass AND d.objid = {alias}.oid AND d.deptype = 'e')"
    )
}

#[derive(Debug, Clone)]
pub(crate) struct IndexColumn {
    /// The column name or expression, as `pg_get_indexdef(index, n, true)` prints it.
    pub(crate) def: String,
    pub(crate) opclass: i64,
    pub(crate) collation: i64,
    /// `indoption` bits: 1 = DESC, 2 = NULLS FIRST.
    pub(crate) option: i16,
    /// 0 for an expression.
    pub(crate) attnum: i16,
}

#[derive(Debug, Clone)]
pub(crate) struct Index {
    pub(crate) schema: String,
    pub(crate) table: String,
    pub(crate) name: String,
    pub(crate) qname: String,
    pub(crate) table_oid: i64,
    pub(crate) method: String,
    pub(crate) unique: bool,
    pub(crate) primary: bool,
    /// Backs a primary key, unique or exclusion constraint.
    pub(crate) constraint: bool,
    pub(crate) valid: bool,
    /// The first `key_count` columns are keys; the rest are `INCLUDE` columns.
    pub(crate) key_count: usize,
    pub(crate) columns: Vec<IndexColumn>,
    pub(crate) predicate: Option<String>,
    pub(crate) definition: String,
    pub(crate) size: i64,
    pub(crate) size_pretty: String,
    pub(crate) scans: Option<i64>,
}

impl Index {
    pub(crate) fn keys(&self) -> &[IndexColumn] {
        &self.columns[..self.key_count.min(self.columns.len())]
    }
    pub(crate) fn includes(&self) -> &[IndexColumn] {
        &self.columns[self.key_count.min(self.columns.len())..]
    }
    pub(crate) fn object(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ForeignKey {
    pub(crate) schema: String,
    pub(crate) table: String,
    pub(crate) qtable: String,
    pub(crate) name: String,
    pub(crate) table_oid: i64,
    pub(crate) attnums: Vec<i16>,
    /// Quoted column names, in the constraint's order.
    pub(crate) columns: Vec<String>,
    pub(crate) definition: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub(crate) schema: String,
    pub(crate) name: String,
    pub(crate) qname: String,
    pub(crate) rls: bool,
    pub(crate) force_rls: bool,
    pub(crate) has_primary_key: bool,
    pub(crate) partition: bool,
    /// Which of the configured tenant columns the table has.
    pub(crate) tenant_columns: Vec<String>,
    pub(crate) policy_count: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct View {
    pub(crate) schema: String,
    pub(crate) name: String,
    pub(crate) qname: String,
    pub(crate) options: Vec<String>,
    /// Tables with row-level security the view reads, directly or through other views.
    pub(crate) rls_tables: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub(crate) schema: String,
    pub(crate) table: String,
    pub(crate) qtable: String,
    pub(crate) name: String,
    pub(crate) permissive: bool,
    /// `r` SELECT, `a` INSERT, `w` UPDATE, `d` DELETE, `*` ALL.
    pub(crate) command: char,
    /// Role names; `PUBLIC` for everyone.
    pub(crate) roles: Vec<String>,
    /// The stored expression trees (`pg_node_tree` as text) and their deparsed forms.
    pub(crate) using_tree: Option<String>,
    pub(crate) check_tree: Option<String>,
    pub(crate) using_text: Option<String>,
    pub(crate) check_text: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Function {
    pub(crate) schema: String,
    pub(crate) name: String,
    pub(crate) args: String,
    pub(crate) qname: String,
    pub(crate) security_definer: bool,
    pub(crate) language: String,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Catalog {
    pub(crate) server_version: String,
    pub(crate) server_version_num: i32,
    pub(crate) database: String,
    /// Seconds since this database's statistics were last reset; `None` if never.
    pub(crate) stats_age_secs: Option<f64>,
    pub(crate) indexes: Vec<Index>,
    pub(crate) foreign_keys: Vec<ForeignKey>,
    pub(crate) tables: Vec<Table>,
    pub(crate) views: Vec<View>,
    pub(crate) policies: Vec<Policy>,
    /// Functions without a pinned `search_path` (extension members and C functions excluded).
    pub(crate) mutable_search_path: Vec<Function>,
    /// Roles with BYPASSRLS: policies never apply to them.
    pub(crate) bypass_rls_roles: Vec<String>,
    /// The OIDs of the configured per-row functions, with their display names.
    pub(crate) per_row_functions: HashMap<i64, String>,
}

/// A query failure as one line naming what was being read.
pub(crate) fn sql_error(what: &str, e: sqlx::Error) -> OpsError {
    if let sqlx::Error::Database(d) = &e {
        if d.code().as_deref() == Some("42501") {
            return OpsError::unavailable(format!(
                "insufficient privilege while reading {what}: {}. Fix: run the audit as the schema owner or a role with pg_read_all_stats",
                d.message()
            ));
        }
    }
    let err = keel_storage::StorageError::Query(e);
    let unavailable = err.is_unavailable();
    let msg = format!("while reading {what}: {err}");
    if unavailable {
        OpsError::unavailable(msg)
    } else {
        OpsError::failed(msg)
    }
}

type Tx = Transaction<'static, Postgres>;

async fn fetch(tx: &mut Tx, what: &str, sql: &str) -> Result<Vec<PgRow>, OpsError> {
    sqlx::query(sql).fetch_all(&mut **tx).await.map_err(|e| sql_error(what, e))
}

fn get<'r, T>(row: &'r PgRow, col: &str, what: &str) -> Result<T, OpsError>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(col).map_err(|e| sql_error(what, e))
}

/// Called once per step so a terminal can show progress.
pub(crate) type Step<'a> = &'a mut dyn FnMut(&str);

pub(crate) async fn load(
    pool: &PgPool,
    tenant_columns: &[String],
    per_row: &[String],
    step: Step<'_>,
) -> Result<Catalog, OpsError> {
    let mut tx = pool.begin().await.map_err(|e| sql_error("the catalog", e))?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(|e| sql_error("the catalog", e))?;
    let mut cat = Catalog::default();

    step("server");
    let row = sqlx::query(
        "SELECT current_setting('server_version') AS v, current_setting('server_version_num')::int4 AS num,
                current_database()::text AS db,
                (SELECT extract(epoch FROM now() - stats_reset)::float8 FROM pg_stat_database
                  WHERE datname = current_database()) AS stats_age",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| sql_error("the server version", e))?;
    cat.server_version = get(&row, "v", "the server version")?;
    cat.server_version_num = get(&row, "num", "the server version")?;
    cat.database = get(&row, "db", "the server version")?;
    cat.stats_age_secs = get(&row, "stats_age", "the statistics age")?;

    step("indexes");
    cat.indexes = load_indexes(&mut tx).await?;
    step("foreign keys");
    cat.foreign_keys = load_foreign_keys(&mut tx).await?;
    step("tables");
    cat.tables = load_tables(&mut tx, tenant_columns).await?;
    step("views");
    cat.views = load_views(&mut tx).await?;
    step("policies");
    cat.policies = load_policies(&mut tx).await?;
    cat.bypass_rls_roles = fetch(&mut tx, "roles", "SELECT rolname::text AS r FROM pg_roles WHERE rolbypassrls")
        .await?
        .iter()
        .map(|r| get(r, "r", "roles"))
        .collect::<Result<_, _>>()?;
    cat.per_row_functions = load_per_row_functions(&mut tx, per_row).await?;
    step("functions");
    cat.mutable_search_path = load_functions(&mut tx).await?;
    tx.rollback().await.map_err(|e| sql_error("the catalog", e))?;
    Ok(cat)
}

async fn load_indexes(tx: &mut Tx) -> Result<Vec<Index>, OpsError> {
    const WHAT: &str = "indexes (pg_index)";
    let sql = format!(
        "SELECT n.nspname::text AS schema, t.relname::text AS tbl, i.relname::text AS name,
                quote_ident(n.nspname) || '.' || quote_ident(i.relname) AS qname, t.oid::int8 AS table_oid,
                am.amname::text AS method, x.indisunique AS uniq, x.indisprimary AS prim,
                (x.indisexclusion OR EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid
                   AND c.contype IN ('p', 'u', 'x'))) AS constr,
                (x.indisvalid AND x.indisready AND x.indislive) AS valid,
                x.indnkeyatts::int4 AS nkey,
                -- the vectors are 0-based; re-collect them so they decode as ordinary arrays
                ARRAY(SELECT v FROM unnest(x.indkey::int2[]) WITH ORDINALITY u(v, o) ORDER BY o) AS attnums,
                ARRAY(SELECT v::int8 FROM unnest(x.indclass::oid[]) WITH ORDINALITY u(v, o) ORDER BY o) AS opclasses,
                ARRAY(SELECT v::int8 FROM unnest(x.indcollation::oid[]) WITH ORDINALITY u(v, o) ORDER BY o) AS collations,
                ARRAY(SELECT v FROM unnest(x.indoption::int2[]) WITH ORDINALITY u(v, o) ORDER BY o) AS options,
                ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true) FROM generate_series(1, x.indnatts::int4) k ORDER BY k) AS defs,
                pg_get_expr(x.indpred, x.indrelid) AS pred, pg_get_indexdef(x.indexrelid) AS def,
                pg_relation_size(x.indexrelid) AS size, pg_size_pretty(pg_relation_size(x.indexrelid)) AS size_pretty,
                s.idx_scan AS scans
         FROM pg_index x
         JOIN pg_class i ON i.oid = x.indexrelid
         JOIN pg_class t ON t.oid = x.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         JOIN pg_am am ON am.oid = i.relam
         LEFT JOIN pg_stat_all_indexes s ON s.indexrelid = x.indexrelid
         WHERE {USER_SCHEMA} AND t.relname <> '_sqlx_migrations' AND {}
         ORDER BY 1, 2, 3",
        not_extension_member("pg_class", "i")
    );
    let mut out = Vec::new();
    for r in fetch(tx, WHAT, &sql).await? {
        let attnums: Vec<i16> = get(&r, "attnums", WHAT)?;
        let opclasses: Vec<i64> = get(&r, "opclasses", WHAT)?;
        let collations: Vec<i64> = get(&r, "collations", WHAT)?;
        let options: Vec<i16> = get(&r, "options", WHAT)?;
        let defs: Vec<String> = get(&r, "defs", WHAT)?;
        let columns = defs
            .into_iter()
            .enumerate()
            .map(|(k, def)| IndexColumn {
                def,
                attnum: attnums.get(k).copied().unwrap_or(0),
                opclass: opclasses.get(k).copied().unwrap_or(0),
                collation: collations.get(k).copied().unwrap_or(0),
                option: options.get(k).copied().unwrap_or(0),
            })
            .collect();
        let nkey: i32 = get(&r, "nkey", WHAT)?;
        out.push(Index {
            schema: get(&r, "schema", WHAT)?,
            table: get(&r, "tbl", WHAT)?,
            name: get(&r, "name", WHAT)?,
            qname: get(&r, "qname", WHAT)?,
            table_oid: get(&r, "table_oid", WHAT)?,
            method: get(&r, "method", WHAT)?,
            unique: get(&r, "uniq", WHAT)?,
            primary: get(&r, "prim", WHAT)?,
            constraint: get(&r, "constr", WHAT)?,
            valid: get(&r, "valid", WHAT)?,
            key_count: usize::try_from(nkey).unwrap_or(0),
            columns,
            predicate: get(&r, "pred", WHAT)?,
            definition: get(&r, "def", WHAT)?,
            size: get(&r, "size", WHAT)?,
            size_pretty: get(&r, "size_pretty", WHAT)?,
            scans: get(&r, "scans", WHAT)?,
        });
    }
    Ok(out)
}

async fn load_foreign_keys(tx: &mut Tx) -> Result<Vec<ForeignKey>, OpsError> {
    const WHAT: &str = "foreign keys (pg_constraint)";
    let sql = format!(
        "SELECT n.nspname::text AS schema, t.relname::text AS tbl,
                quote_ident(n.nspname) || '.' || quote_ident(t.relname) AS qtable,
                c.conname::text AS name, t.oid::int8 AS table_oid, c.conkey::int2[] AS attnums,
                ARRAY(SELECT quote_ident(a.attname) FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
                      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord) AS cols,
                pg_get_constraintdef(c.oid) AS def
         FROM pg_constraint c
         JOIN pg_class t ON t.oid = c.conrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE c.contype = 'f' AND c.conparentid = 0 AND {USER_SCHEMA} AND t.relname <> '_sqlx_migrations' AND {}
         ORDER BY 1, 2, 4",
        not_extension_member("pg_class", "t")
    );
    fetch(tx, WHAT, &sql)
        .await?
        .iter()
        .map(|r| {
            Ok(ForeignKey {
                schema: get(r, "schema", WHAT)?,
                table: get(r, "tbl", WHAT)?,
                qtable: get(r, "qtable", WHAT)?,
                name: get(r, "name", WHAT)?,
                table_oid: get(r, "table_oid", WHAT)?,
                attnums: get(r, "attnums", WHAT)?,
                columns: get(r, "cols", WHAT)?,
                definition: get(r, "def", WHAT)?,
            })
        })
        .collect()
}

async fn load_tables(tx: &mut Tx, tenant_columns: &[String]) -> Result<Vec<Table>, OpsError> {
    const WHAT: &str = "tables (pg_class)";
    let sql = format!(
        "SELECT n.nspname::text AS schema, c.relname::text AS name,
                quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qname,
                c.relrowsecurity AS rls, c.relforcerowsecurity AS force_rls, c.relispartition AS part,
                EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p') AS has_pk,
                ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                      AND NOT a.attisdropped AND a.attname::text = ANY($1) ORDER BY a.attnum) AS tenant_cols,
                (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND {USER_SCHEMA} AND c.relname <> '_sqlx_migrations' AND {}
         ORDER BY 1, 2",
        not_extension_member("pg_class", "c")
    );
    let rows = sqlx::query(&sql).bind(tenant_columns).fetch_all(&mut **tx).await.map_err(|e| sql_error(WHAT, e))?;
    rows.iter()
        .map(|r| {
            Ok(Table {
                schema: get(r, "schema", WHAT)?,
                name: get(r, "name", WHAT)?,
                qname: get(r, "qname", WHAT)?,
                rls: get(r, "rls", WHAT)?,
                force_rls: get(r, "force_rls", WHAT)?,
                partition: get(r, "part", WHAT)?,
                has_primary_key: get(r, "has_pk", WHAT)?,
                tenant_columns: get(r, "tenant_cols", WHAT)?,
                policy_count: get(r, "policies", WHAT)?,
            })
        })
        .collect()
}

async fn load_views(tx: &mut Tx) -> Result<Vec<View>, OpsError> {
    const WHAT: &str = "views (pg_rewrite, pg_depend)";
    // A view's rewrite rule depends on every relation it reads; follow views through views.
    let sql = format!(
        "WITH RECURSIVE reads(view_oid, rel_oid) AS (
             SELECT v.oid, d.refobjid
             FROM pg_class v
             JOIN pg_rewrite r ON r.ev_class = v.oid
             JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                             AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> v.oid
             WHERE v.relkind = 'v'
           UNION
             SELECT reads.view_oid, d.refobjid
             FROM reads
             JOIN pg_class m ON m.oid = reads.rel_oid AND m.relkind = 'v'
             JOIN pg_rewrite r ON r.ev_class = m.oid
             JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                             AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> m.oid
         )
         SELECT n.nspname::text AS schema, v.relname::text AS name,
                quote_ident(n.nspname) || '.' || quote_ident(v.relname) AS qname,
                coalesce(v.reloptions, '{{}}')::text[] AS options,
                array_agg(DISTINCT tn.nspname || '.' || t.relname ORDER BY tn.nspname || '.' || t.relname) AS rls_tables
         FROM reads
         JOIN pg_class v ON v.oid = reads.view_oid
         JOIN pg_namespace n ON n.oid = v.relnamespace
         JOIN pg_class t ON t.oid = reads.rel_oid AND t.relkind IN ('r', 'p') AND t.relrowsecurity
         JOIN pg_namespace tn ON tn.oid = t.relnamespace
         WHERE {USER_SCHEMA} AND {}
         GROUP BY 1, 2, 3, 4
         ORDER BY 1, 2",
        not_extension_member("pg_class", "v")
    );
    fetch(tx, WHAT, &sql)
        .await?
        .iter()
        .map(|r| {
            Ok(View {
                schema: get(r, "schema", WHAT)?,
                name: get(r, "name", WHAT)?,
                qname: get(r, "qname", WHAT)?,
                options: get(r, "options", WHAT)?,
                rls_tables: get(r, "rls_tables", WHAT)?,
            })
        })
        .collect()
}

async fn load_policies(tx: &mut Tx) -> Result<Vec<Policy>, OpsError> {
    const WHAT: &str = "policies (pg_policy)";
    let sql = format!(
        "SELECT n.nspname::text AS schema, c.relname::text AS tbl,
                quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qtable,
                p.polname::text AS name, p.polpermissive AS permissive, p.polcmd::text AS cmd,
                ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE coalesce((SELECT rolname::text FROM pg_roles WHERE oid = r), r::text) END
                      FROM unnest(p.polroles) r) AS roles,
                p.polqual::text AS using_tree, p.polwithcheck::text AS check_tree,
                pg_get_expr(p.polqual, p.polrelid) AS using_text, pg_get_expr(p.polwithcheck, p.polrelid) AS check_text
         FROM pg_policy p
         JOIN pg_class c ON c.oid = p.polrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE {USER_SCHEMA} AND {}
         ORDER BY 1, 2, 4",
        not_extension_member("pg_class", "c")
    );
    fetch(tx, WHAT, &sql)
        .await?
        .iter()
        .map(|r| {
            let cmd: String = get(r, "cmd", WHAT)?;
            Ok(Policy {
                schema: get(r, "schema", WHAT)?,
                table: get(r, "tbl", WHAT)?,
                qtable: get(r, "qtable", WHAT)?,
                name: get(r, "name", WHAT)?,
                permissive: get(r, "permissive", WHAT)?,
                command: cmd.chars().next().unwrap_or('*'),
                roles: get(r, "roles", WHAT)?,
                using_tree: get(r, "using_tree", WHAT)?,
                check_tree: get(r, "check_tree", WHAT)?,
                using_text: get(r, "using_text", WHAT)?,
                check_text: get(r, "check_text", WHAT)?,
            })
        })
        .collect()
}

/// `schema.name` entries match that function only; bare names match in any schema.
async fn load_per_row_functions(tx: &mut Tx, per_row: &[String]) -> Result<HashMap<i64, String>, OpsError> {
    const WHAT: &str = "functions (pg_proc)";
    let names: Vec<String> =
        per_row.iter().map(|f| f.rsplit_once('.').map_or(f.as_str(), |(_, n)| n).to_owned()).collect();
    let rows = sqlx::query(
        "SELECT p.oid::int8 AS oid, n.nspname::text AS schema, p.proname::text AS name
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.proname::text = ANY($1)",
    )
    .bind(&names)
    .fetch_all(&mut **tx)
    .await
    .map_err(|e| sql_error(WHAT, e))?;
    let mut out = HashMap::new();
    for r in rows {
        let (oid, schema, name): (i64, String, String) =
            (get(&r, "oid", WHAT)?, get(&r, "schema", WHAT)?, get(&r, "name", WHAT)?);
        let wanted = per_row.iter().any(|f| match f.rsplit_once('.') {
            Some((s, n)) => s == schema && n == name,
            None => f == &name,
        });
        if wanted {
            let display = if schema == "pg_catalog" { name } else { format!("{schema}.{name}") };
            out.insert(oid, display);
        }
    }
    Ok(out)
}

async fn load_functions(tx: &mut Tx) -> Result<Vec<Function>, OpsError> {
    const WHAT: &str = "functions (pg_proc)";
    let sql = format!(
        "SELECT n.nspname::text AS schema, p.proname::text AS name,
                pg_get_function_identity_arguments(p.oid) AS args,
                quote_ident(n.nspname) || '.' || quote_ident(p.proname) AS qname,
                p.prosecdef AS secdef, l.lanname::text AS lang
         FROM pg_proc p
         JOIN pg_namespace n ON n.oid = p.pronamespace
         JOIN pg_language l ON l.oid = p.prolang
         WHERE p.prokind IN ('f', 'p') AND l.lanname NOT IN ('c', 'internal') AND {USER_SCHEMA} AND {}
           AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{{}}')) cfg
                           WHERE split_part(cfg, '=', 1) = 'search_path')
         ORDER BY 1, 2, 3",
        not_extension_member("pg_proc", "p")
    );
    fetch(tx, WHAT, &sql)
        .await?
        .iter()
        .map(|r| {
            Ok(Function {
                schema: get(r, "schema", WHAT)?,
                name: get(r, "name", WHAT)?,
                args: get(r, "args", WHAT)?,
                qname: get(r, "qname", WHAT)?,
                security_definer: get(r, "secdef", WHAT)?,
                language: get(r, "lang", WHAT)?,
            })
        })
        .collect()
}
