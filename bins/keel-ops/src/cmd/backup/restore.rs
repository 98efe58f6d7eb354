//! `keel-ops backup restore DIR`: verify the backup, then load it into an empty database of the
//! same schema version in ONE transaction, referenced tables first, so either every row is
//! restored or nothing is. `--force` replaces the contents of the backed-up tables instead of
//! refusing a non-empty database. A backup of an SQLite deployment loads too: its tables are
//! matched by name in the current schema and each row is converted (`portable`).

use super::manifest::{Manifest, TableEntry};
use super::portable::{self, Direction, Plan, TargetColumn};
use super::tables::{self, db_error, BizTable, Fk};
use crate::output::OpsError;
use crate::progress::Progress;
use sqlx::{self, PgConnection, PgPool};
use std::io::BufRead;
use std::path::Path;

/// Rows per INSERT: big enough to amortise the round trip, small enough to bound memory.
const BATCH_ROWS: usize = 1000;
const BATCH_BYTES: usize = 8 << 20;

pub(crate) struct Restored {
    pub(crate) tables: Vec<(String, u64)>,
}

pub(crate) async fn restore(pool: &PgPool, dir: &Path, m: &Manifest, force: bool) -> Result<Restored, OpsError> {
    let from_sqlite = match m.backend.as_str() {
        "postgres" => false,
        "sqlite" => true,
        other => {
            return Err(OpsError::failed(format!("this backup names backend {other:?}; expected postgres or sqlite")))
        }
    };
    let progress = Progress::stderr();
    let mut tx = pool.begin().await.map_err(|e| db_error("starting the restore", e))?;
    tables::all_rows_or_error(&mut tx).await?;
    super::versions::check(&m.schema_versions, &super::versions::postgres(&mut tx).await?)?;

    let all = tables::list(&mut tx).await?;
    // SQLite has one schema (`main`); its tables land in the schema Keel's migrations use here.
    let current_schema: String = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| db_error("reading the current schema", e))?;
    let mut targets: Vec<(BizTable, &TableEntry, Option<Plan>)> = Vec::new();
    for e in &m.tables {
        let schema = if from_sqlite { current_schema.as_str() } else { e.schema.as_str() };
        let t = all.iter().find(|t| t.schema == schema && t.name == e.table).ok_or_else(|| {
            OpsError::failed(format!("the backup has table {} but the database has no {schema}.{}", e.name(), e.table))
        })?;
        let plan = if from_sqlite {
            let cols = target_columns(&mut tx, t.oid).await?;
            Some(portable::plan(Direction::SqliteToPostgres, &t.full_name(), &e.file, &e.columns, &cols)?)
        } else {
            None
        };
        targets.push((t.clone(), e, plan));
    }

    let mut non_empty = Vec::new();
    for t in &all {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", t.source());
        let any: bool = sqlx::query_scalar(&sql)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| db_error(&format!("checking {}", t.full_name()), e))?;
        if any {
            non_empty.push(t.full_name());
        }
    }
    if !non_empty.is_empty() {
        if !force {
            return Err(OpsError::failed(format!(
                "the database is not empty ({} hold rows); restore into an empty, migrated database, or pass --force to replace the contents of the {} tables in the backup",
                non_empty.join(", "),
                targets.len()
            )));
        }
        let list: Vec<&str> = targets.iter().map(|(t, _, _)| t.qname.as_str()).collect();
        sqlx::query(&format!("TRUNCATE {}", list.join(", "))).execute(&mut *tx).await.map_err(|e| {
            db_error("--force: emptying the tables in the backup (a table outside the backup may reference them)", e)
        })?;
    }
    // Deferrable constraints are checked at commit, which lets cycles between tables load.
    sqlx::query("SET CONSTRAINTS ALL DEFERRED").execute(&mut *tx).await.map_err(|e| db_error("restore", e))?;

    let fks = tables::foreign_keys(&mut tx).await?;
    let order = tables::fk_order(&targets.iter().map(|(t, _, _)| t.clone()).collect::<Vec<_>>(), &fks);
    let mut done = Vec::new();
    for t in &order {
        let Some((_, entry, plan)) = targets.iter().find(|(x, _, _)| x.oid == t.oid) else { continue };
        progress.rows(&format!("restoring {}", t.full_name()), Some(entry.rows));
        load_table(&mut tx, dir, t, entry, plan.as_ref(), &fks, &progress).await?;
        reset_sequences(&mut tx, t).await?;
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}", t.source()))
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| db_error(&format!("counting {}", t.full_name()), e))?;
        if u64::try_from(n).ok() != Some(entry.rows) {
            return Err(OpsError::failed(format!(
                "{} has {n} rows after loading, the manifest says {}; nothing was restored",
                t.full_name(),
                entry.rows
            )));
        }
        done.push((t.full_name(), entry.rows));
    }
    progress.phase("committing…");
    tx.commit().await.map_err(|e| db_error("committing the restore (nothing was restored)", e))?;
    progress.finish();
    Ok(Restored { tables: done })
}

/// Reads the table's file in batches and inserts them; self-referencing tables go through a
/// staging table and are inserted parents first.
async fn load_table(
    conn: &mut PgConnection,
    dir: &Path,
    t: &BizTable,
    entry: &TableEntry,
    plan: Option<&Plan>,
    fks: &[Fk],
    progress: &Progress,
) -> Result<(), OpsError> {
    let (cols, overriding) = tables::insert_columns(conn, t.oid).await?;
    let cols = cols.join(", ");
    let over = if overriding { " OVERRIDING SYSTEM VALUE" } else { "" };
    let self_fks: Vec<&Fk> = fks.iter().filter(|f| f.child == t.oid && f.parent == t.oid).collect();
    let stage = "keel_restore_stage";
    let insert = if self_fks.is_empty() {
        format!(
            "INSERT INTO {q} ({cols}){over} SELECT {cols} FROM json_populate_recordset(NULL::{q}, $1::json)",
            q = t.qname
        )
    } else {
        sqlx::query(&format!("CREATE TEMP TABLE {stage} AS SELECT {cols} FROM {} WITH NO DATA", t.qname))
            .execute(&mut *conn)
            .await
            .map_err(|e| db_error("creating the staging table", e))?;
        format!("INSERT INTO {stage} SELECT {cols} FROM json_populate_recordset(NULL::{q}, $1::json)", q = t.qname)
    };
    let what = format!("restoring {}", t.full_name());
    let path = dir.join(&entry.file);
    let file =
        std::fs::File::open(&path).map_err(|e| OpsError::failed(format!("cannot read {}: {e}", path.display())))?;
    let mut batch = String::from("[");
    let (mut in_batch, mut loaded) = (0usize, 0u64);
    for (n, line) in std::io::BufReader::with_capacity(1 << 20, file).lines().enumerate() {
        let line = line.map_err(|e| OpsError::failed(format!("cannot read {}: {e}", path.display())))?;
        let line = match plan {
            Some(p) => p.convert(&line, n as u64 + 1)?,
            None => line,
        };
        if in_batch > 0 {
            batch.push(',');
        }
        batch.push_str(&line);
        in_batch += 1;
        if in_batch >= BATCH_ROWS || batch.len() >= BATCH_BYTES {
            batch.push(']');
            sqlx::query(&insert).bind(&batch).execute(&mut *conn).await.map_err(|e| db_error(&what, e))?;
            loaded += in_batch as u64;
            progress.position(loaded);
            batch = String::from("[");
            in_batch = 0;
        }
    }
    if in_batch > 0 {
        batch.push(']');
        sqlx::query(&insert).bind(&batch).execute(&mut *conn).await.map_err(|e| db_error(&what, e))?;
    }
    if self_fks.is_empty() {
        return Ok(());
    }
    // A row is ready when each self-reference is NULL, points at a row already inserted, or
    // points at the row itself. Each pass inserts one more level of the tree.
    let ready: Vec<String> = self_fks
        .iter()
        .map(|fk| {
            let nulls: Vec<String> = fk.columns.iter().map(|c| format!("s.{c} IS NULL")).collect();
            let eq = |l: &str, r: &str| -> String {
                fk.columns
                    .iter()
                    .zip(&fk.ref_columns)
                    .map(|(c, rc)| format!("{l}.{rc} = {r}.{c}"))
                    .collect::<Vec<_>>()
                    .join(" AND ")
            };
            let own: Vec<String> =
                fk.columns.iter().zip(&fk.ref_columns).map(|(c, rc)| format!("s.{c} = s.{rc}")).collect();
            format!(
                "({} OR EXISTS (SELECT 1 FROM {} p WHERE {}) OR ({}))",
                nulls.join(" OR "),
                t.qname,
                eq("p", "s"),
                own.join(" AND ")
            )
        })
        .collect();
    let step = format!(
        "WITH moved AS (DELETE FROM {stage} s WHERE {} RETURNING s.*) INSERT INTO {} ({cols}){over} SELECT {cols} FROM moved",
        ready.join(" AND "),
        t.qname
    );
    loop {
        let n = sqlx::query(&step).execute(&mut *conn).await.map_err(|e| db_error(&what, e))?.rows_affected();
        if n == 0 {
            break;
        }
    }
    let left: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {stage}"))
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| db_error(&what, e))?;
    if left > 0 {
        return Err(OpsError::failed(format!(
            "{}: {left} rows reference rows of the same table that are not in the backup (or form a cycle); nothing was restored",
            t.full_name()
        )));
    }
    sqlx::query(&format!("DROP TABLE {stage}")).execute(&mut *conn).await.map_err(|e| db_error(&what, e))?;
    Ok(())
}

/// Serial and identity sequences continue after the restored values, not at 1.
async fn reset_sequences(conn: &mut PgConnection, t: &BizTable) -> Result<(), OpsError> {
    let seqs: Vec<(String, String)> = sqlx::query_as(
        "SELECT quote_ident(a.attname) AS col, pg_get_serial_sequence($2, a.attname) AS seq
         FROM pg_attribute a WHERE a.attrelid = $1::int8::oid AND a.attnum > 0 AND NOT a.attisdropped
           AND pg_get_serial_sequence($2, a.attname) IS NOT NULL",
    )
    .bind(t.oid)
    .bind(&t.qname)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| db_error("reading sequences", e))?;
    for (col, seq) in seqs {
        sqlx::query(&format!(
            "SELECT setval($1::regclass, m) FROM (SELECT max({col})::int8 AS m FROM {}) x WHERE m IS NOT NULL",
            t.qname
        ))
        .bind(&seq)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| db_error(&format!("resetting {seq}"), e))?;
    }
    Ok(())
}

/// The columns a restore writes, with their types and nullability, for converting rows.
async fn target_columns(conn: &mut PgConnection, oid: i64) -> Result<Vec<TargetColumn>, OpsError> {
    let rows: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT attname::text, format_type(atttypid, atttypmod), NOT attnotnull FROM pg_attribute
         WHERE attrelid = $1::int8::oid AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
    )
    .bind(oid)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| db_error("reading column types", e))?;
    Ok(rows.into_iter().map(|(name, ty, nullable)| TargetColumn { name, ty, nullable }).collect())
}
