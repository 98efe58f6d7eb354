//! Backups of an SQLite deployment in the same format: one read transaction (under WAL, one
//! snapshot for every table) exported with `json_object`, restored with `json_each` in one
//! transaction with foreign keys checked at commit. Keel's SQLite conventions (UUIDs as text,
//! times as integer milliseconds, JSON as text) make every value a JSON scalar; BLOB columns
//! are refused by SQLite's JSON functions and reported. A PostgreSQL backup loads too: tables
//! are matched by name and each row is converted to these conventions (`portable`).

use super::export::{prepare, seal, select, Partial, TableWriter};
use super::manifest::{self, Column, Manifest, TableEntry};
use super::portable::{self, Direction, Plan, TargetColumn};
use super::tables::{fk_order, BizTable, Fk};
use crate::output::OpsError;
use crate::progress::Progress;
use futures::TryStreamExt;
use sqlx::{self, Row, SqliteConnection, SqlitePool};
use std::io::BufRead;
use std::path::Path;

const BATCH_ROWS: usize = 1000;
const BATCH_BYTES: usize = 8 << 20;

fn db_error(what: &str, e: sqlx::Error) -> OpsError {
    super::tables::db_error(what, e)
}

/// `"name"` with embedded quotes doubled.
fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A JSON string literal for a key, as SQL text: `'name'` with quotes doubled.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

struct SqliteTable {
    table: BizTable,
    /// Stored (non-generated) columns.
    columns: Vec<TargetColumn>,
}

async fn list(conn: &mut SqliteConnection) -> Result<(Vec<SqliteTable>, Vec<Fk>), OpsError> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
           AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| db_error("listing tables", e))?;
    let names: Vec<String> = names.into_iter().filter(|n| !super::versions::is_tracking_table(n)).collect();
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        // hidden: 0 ordinary, 2/3 generated columns (computed, so neither exported nor written).
        let cols = sqlx::query(
            "SELECT name, type, \"notnull\" AS nn, pk FROM pragma_table_xinfo(?) WHERE hidden = 0 ORDER BY cid",
        )
        .bind(name)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| db_error("reading columns", e))?;
        let mut columns = Vec::new();
        let mut pk: Vec<(i64, String)> = Vec::new();
        for c in cols {
            let g = |e| db_error("reading columns", e);
            let (col, ty, notnull, k): (String, String, bool, i64) = (
                c.try_get("name").map_err(g)?,
                c.try_get("type").map_err(g)?,
                c.try_get("nn").map_err(g)?,
                c.try_get("pk").map_err(g)?,
            );
            if k > 0 {
                pk.push((k, col.clone()));
            }
            columns.push(TargetColumn { name: col, ty, nullable: !notnull });
        }
        pk.sort();
        let order_by =
            if pk.is_empty() { vec!["rowid".to_owned()] } else { pk.into_iter().map(|(_, c)| q(&c)).collect() };
        out.push(SqliteTable {
            table: BizTable {
                oid: i as i64,
                schema: "main".to_owned(),
                name: name.clone(),
                qname: q(name),
                partitioned: false,
                order_by,
                estimate: 0,
            },
            columns,
        });
    }
    let mut fks = Vec::new();
    for t in &out {
        let parents: Vec<String> = sqlx::query_scalar("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?)")
            .bind(&t.table.name)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| db_error("reading foreign keys", e))?;
        for p in parents {
            if let Some(parent) = out.iter().find(|x| x.table.name == p) {
                fks.push(Fk { child: t.table.oid, parent: parent.table.oid, columns: vec![], ref_columns: vec![] });
            }
        }
    }
    Ok((out, fks))
}

pub(crate) async fn export(
    pool: &SqlitePool,
    out: &Path,
    wanted: &[String],
    redact_sealed: bool,
) -> Result<Manifest, OpsError> {
    let progress = Progress::stderr();
    let mut tx = pool.begin().await.map_err(|e| db_error("starting the snapshot", e))?;
    let (all, fks) = list(&mut tx).await?;
    let schema_versions = super::versions::sqlite(&mut tx).await?;
    let server_version: String = sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| db_error("reading the SQLite version", e))?;
    let chosen = fk_order(&select(all.iter().map(|t| t.table.clone()).collect(), wanted)?, &fks);

    let partial = prepare(out)?;
    let mut guard = Partial(Some(partial.clone()));
    let mut entries = Vec::new();
    for bt in &chosen {
        let Some(t) = all.iter().find(|t| t.table.oid == bt.oid) else { continue };
        // json_object prints REAL with 15 significant digits, which is lossy; SQLite's printf needs
        // the ! flag to go past 15, and 17 digits round-trip every double.
        let pairs: Vec<String> = t
            .columns
            .iter()
            .map(|c| {
                format!(
                    "{}, CASE WHEN typeof({qc}) = 'real' THEN json(printf('%!.17g', {qc})) ELSE {qc} END",
                    lit(&c.name),
                    qc = q(&c.name)
                )
            })
            .collect();
        let sql =
            format!("SELECT json_object({}) FROM {} ORDER BY {}", pairs.join(", "), bt.qname, bt.order_by.join(", "));
        let what = format!("exporting {}", bt.full_name());
        progress.rows(&what, None);
        let columns = t.columns.iter().map(|c| Column { name: c.name.clone(), ty: c.ty.clone() }).collect();
        let mut w = TableWriter::create(&partial, &bt.schema, &bt.name, columns, redact_sealed)?;
        let mut stream = sqlx::query_scalar::<_, String>(&sql).fetch(&mut *tx);
        while let Some(line) = stream.try_next().await.map_err(|e| db_error(&what, e))? {
            w.push(&line)?;
            if w.rows % 1000 == 0 {
                progress.position(w.rows);
            }
        }
        drop(stream);
        entries.push(w.finish()?);
    }
    tx.rollback().await.map_err(|e| db_error("ending the snapshot", e))?;
    progress.finish();
    let m = Manifest {
        format: manifest::FORMAT.to_owned(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        backend: "sqlite".to_owned(),
        server_version,
        schema_versions,
        snapshot: "one read transaction (WAL snapshot)".to_owned(),
        tables: entries,
    };
    seal(&mut guard, out, &m)?;
    Ok(m)
}

pub(crate) async fn restore(
    pool: &SqlitePool,
    dir: &Path,
    m: &Manifest,
    force: bool,
) -> Result<Vec<(String, u64)>, OpsError> {
    let from_postgres = match m.backend.as_str() {
        "sqlite" => false,
        "postgres" => true,
        other => {
            return Err(OpsError::failed(format!("this backup names backend {other:?}; expected postgres or sqlite")))
        }
    };
    let progress = Progress::stderr();
    let mut tx = pool.begin().await.map_err(|e| db_error("starting the restore", e))?;
    super::versions::check(&m.schema_versions, &super::versions::sqlite(&mut tx).await?)?;
    let (all, fks) = list(&mut tx).await?;
    let mut targets: Vec<(&SqliteTable, &TableEntry, Option<Plan>)> = Vec::new();
    for e in &m.tables {
        // PostgreSQL's schemas have no SQLite counterpart: tables are matched by name alone.
        if from_postgres {
            if let Some(other) = m.tables.iter().find(|o| o.table == e.table && o.schema != e.schema) {
                return Err(OpsError::failed(format!(
                    "the backup has both {} and {}, and SQLite has one schema; export one of them only (--tables)",
                    e.name(),
                    other.name()
                )));
            }
        }
        let t = all
            .iter()
            .find(|t| (from_postgres || e.schema == "main") && t.table.name == e.table)
            .ok_or_else(|| OpsError::failed(format!("the backup has table {} but the database does not", e.name())))?;
        let plan = if from_postgres {
            Some(portable::plan(Direction::PostgresToSqlite, &t.table.full_name(), &e.file, &e.columns, &t.columns)?)
        } else {
            None
        };
        targets.push((t, e, plan));
    }
    let mut non_empty = Vec::new();
    for t in &all {
        let any: bool = sqlx::query_scalar(&format!("SELECT EXISTS (SELECT 1 FROM {})", t.table.qname))
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| db_error(&format!("checking {}", t.table.full_name()), e))?;
        if any {
            non_empty.push(t.table.full_name());
        }
    }
    // Foreign keys are checked at commit, so a self-referencing tree loads in any order.
    sqlx::query("PRAGMA defer_foreign_keys = ON").execute(&mut *tx).await.map_err(|e| db_error("restore", e))?;
    if !non_empty.is_empty() {
        if !force {
            return Err(OpsError::failed(format!(
                "the database is not empty ({} hold rows); restore into an empty, migrated database, or pass --force to replace the contents of the {} tables in the backup",
                non_empty.join(", "),
                targets.len()
            )));
        }
        for (t, _, _) in &targets {
            sqlx::query(&format!("DELETE FROM {}", t.table.qname))
                .execute(&mut *tx)
                .await
                .map_err(|e| db_error(&format!("--force: emptying {}", t.table.full_name()), e))?;
        }
    }
    let order = fk_order(&targets.iter().map(|(t, _, _)| t.table.clone()).collect::<Vec<_>>(), &fks);
    let mut done = Vec::new();
    for bt in &order {
        let Some((t, entry, plan)) = targets.iter().find(|(t, _, _)| t.table.oid == bt.oid) else { continue };
        let what = format!("restoring {}", bt.full_name());
        progress.rows(&what, Some(entry.rows));
        let cols: Vec<String> = t.columns.iter().map(|c| q(&c.name)).collect();
        let values: Vec<String> =
            t.columns.iter().map(|c| format!("json_extract(value, {})", lit(&format!("$.\"{}\"", c.name)))).collect();
        let insert = format!(
            "INSERT INTO {} ({}) SELECT {} FROM json_each(?) ORDER BY key",
            bt.qname,
            cols.join(", "),
            values.join(", ")
        );
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
                sqlx::query(&insert).bind(&batch).execute(&mut *tx).await.map_err(|e| db_error(&what, e))?;
                loaded += in_batch as u64;
                progress.position(loaded);
                batch = String::from("[");
                in_batch = 0;
            }
        }
        if in_batch > 0 {
            batch.push(']');
            sqlx::query(&insert).bind(&batch).execute(&mut *tx).await.map_err(|e| db_error(&what, e))?;
        }
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}", bt.qname))
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| db_error(&what, e))?;
        if u64::try_from(n).ok() != Some(entry.rows) {
            return Err(OpsError::failed(format!(
                "{} has {n} rows after loading, the manifest says {}; nothing was restored",
                bt.full_name(),
                entry.rows
            )));
        }
        done.push((bt.full_name(), entry.rows));
    }
    progress.phase("committing…");
    tx.commit().await.map_err(|e| db_error("committing the restore (nothing was restored)", e))?;
    progress.finish();
    Ok(done)
}
