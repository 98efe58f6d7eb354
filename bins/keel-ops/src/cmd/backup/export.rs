//! `keel-ops backup export`: every business table (or the ones named) as JSON Lines, read in
//! ONE repeatable-read, read-only transaction so the files agree with each other, plus a
//! manifest with row counts and SHA-256 checksums. Written to a hidden sibling directory and
//! renamed into place at the end, so a failure never leaves a half-written backup behind.

use super::manifest::{self, Column, Manifest, TableEntry};
use super::tables::{self, db_error, BizTable};
use crate::output::OpsError;
use crate::progress::Progress;
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::{self, PgPool};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Removes the partial directory unless the export completed.
pub(super) struct Partial(pub(super) Option<PathBuf>);

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

pub(super) fn io(what: &str, path: &Path, e: std::io::Error) -> OpsError {
    OpsError::failed(format!("{what} {}: {e}", path.display()))
}

/// Refuses to touch an existing, non-empty directory; returns the partial directory to fill.
pub(super) fn prepare(out: &Path) -> Result<PathBuf, OpsError> {
    if out.exists() {
        let empty = out.is_dir() && std::fs::read_dir(out).map_err(|e| io("cannot read", out, e))?.next().is_none();
        if !empty {
            return Err(OpsError::usage(format!(
                "{} already exists and is not an empty directory; a backup never overwrites: choose a new --out",
                out.display()
            )));
        }
    }
    let name = out
        .file_name()
        .ok_or_else(|| OpsError::usage(format!("--out {} must name a directory", out.display())))?
        .to_string_lossy()
        .into_owned();
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| io("cannot create", parent, e))?;
    let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir(&partial).map_err(|e| io("cannot create", &partial, e))?;
    Ok(partial)
}

/// `--tables` entries are `table` (any schema, must be unambiguous) or `schema.table`.
pub(super) fn select(all: Vec<BizTable>, wanted: &[String]) -> Result<Vec<BizTable>, OpsError> {
    if wanted.is_empty() {
        return Ok(all);
    }
    let mut out: Vec<BizTable> = Vec::new();
    for w in wanted.iter().map(|w| w.trim()).filter(|w| !w.is_empty()) {
        let hits: Vec<&BizTable> = all
            .iter()
            .filter(|t| match w.split_once('.') {
                Some((s, n)) => t.schema == s && t.name == n,
                None => t.name == w,
            })
            .collect();
        match hits.as_slice() {
            [t] => {
                if !out.iter().any(|o| o.oid == t.oid) {
                    out.push((*t).clone());
                }
            }
            [] => {
                let names: Vec<String> = all.iter().map(BizTable::full_name).collect();
                return Err(OpsError::usage(format!(
                    "--tables: no business table {w:?}; the database has: {}",
                    names.join(", ")
                )));
            }
            many => {
                let names: Vec<String> = many.iter().map(|t| t.full_name()).collect();
                return Err(OpsError::usage(format!(
                    "--tables: {w:?} is ambiguous ({}); write schema.table",
                    names.join(", ")
                )));
            }
        }
    }
    Ok(out)
}

pub(crate) struct Exported {
    pub(crate) manifest: Manifest,
}

pub(crate) async fn export(
    pool: &PgPool,
    out: &Path,
    wanted: &[String],
    redact_sealed: bool,
) -> Result<Exported, OpsError> {
    let progress = Progress::stderr();
    let mut tx = pool.begin().await.map_err(|e| db_error("starting the snapshot", e))?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(|e| db_error("starting the snapshot", e))?;
    tables::all_rows_or_error(&mut tx).await?;
    let all = tables::list(&mut tx).await?;
    let fks = tables::foreign_keys(&mut tx).await?;
    let chosen = tables::fk_order(&select(all, wanted)?, &fks);
    let schema_versions = super::versions::postgres(&mut tx).await?;
    let server_version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| db_error("reading the server version", e))?;

    let partial = prepare(out)?;
    let mut guard = Partial(Some(partial.clone()));
    let mut entries = Vec::new();
    for t in &chosen {
        let columns = tables::row_columns(&mut tx, t.oid).await?;
        let mut w = TableWriter::create(&partial, &t.schema, &t.name, columns, redact_sealed)?;
        let sql = format!("SELECT row_to_json(t)::text FROM {} t ORDER BY {}", t.source(), t.order_by.join(", "));
        let what = format!("exporting {}", t.full_name());
        progress.rows(&what, u64::try_from(t.estimate).ok());
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
        backend: "postgres".to_owned(),
        server_version,
        schema_versions,
        snapshot: "one REPEATABLE READ, READ ONLY transaction".to_owned(),
        tables: entries,
    };
    seal(&mut guard, out, &m)?;
    Ok(Exported { manifest: m })
}

/// One table's file: lines are written, hashed and counted as they come.
pub(super) struct TableWriter {
    path: PathBuf,
    file: String,
    schema: String,
    table: String,
    columns: Vec<Column>,
    /// `--redact-sealed`: write sealed job values as `[sealed]` instead of their ciphertext.
    redact_sealed: bool,
    w: std::io::BufWriter<std::fs::File>,
    hash: Sha256,
    pub(super) rows: u64,
}

impl TableWriter {
    pub(super) fn create(
        dir: &Path,
        schema: &str,
        table: &str,
        columns: Vec<Column>,
        redact_sealed: bool,
    ) -> Result<Self, OpsError> {
        let file = manifest::file_name(schema, table);
        let path = dir.join(&file);
        let f = std::fs::File::create(&path).map_err(|e| io("cannot create", &path, e))?;
        Ok(Self {
            path,
            file,
            schema: schema.to_owned(),
            table: table.to_owned(),
            columns,
            redact_sealed,
            w: std::io::BufWriter::with_capacity(1 << 20, f),
            hash: Sha256::new(),
            rows: 0,
        })
    }

    pub(super) fn push(&mut self, line: &str) -> Result<(), OpsError> {
        let scrubbed = if self.redact_sealed && super::sealed::JOB_TABLES.contains(&self.table.as_str()) {
            super::sealed::scrub_job_row(line)
        } else {
            line.into()
        };
        let line: &str = &scrubbed;
        // Raw line breaks can only be whitespace inside a `json` column's value (JSON strings
        // escape theirs), so a space keeps every value equal and lines intact.
        let line = if line.contains(['\n', '\r']) { line.replace(['\n', '\r'], " ") } else { line.to_owned() };
        self.w
            .write_all(line.as_bytes())
            .and_then(|_| self.w.write_all(b"\n"))
            .map_err(|e| io("cannot write", &self.path, e))?;
        self.hash.update(line.as_bytes());
        self.hash.update(b"\n");
        self.rows += 1;
        Ok(())
    }

    pub(super) fn finish(self) -> Result<TableEntry, OpsError> {
        let f = self.w.into_inner().map_err(|e| io("cannot write", &self.path, e.into_error()))?;
        f.sync_all().map_err(|e| io("cannot sync", &self.path, e))?;
        Ok(TableEntry {
            schema: self.schema,
            table: self.table,
            file: self.file,
            rows: self.rows,
            sha256: format!("{:x}", self.hash.finalize()),
            columns: self.columns,
        })
    }
}

/// Writes the manifest last and moves the finished backup into place.
pub(super) fn seal(guard: &mut Partial, out: &Path, m: &Manifest) -> Result<(), OpsError> {
    let Some(partial) = guard.0.clone() else { return Err(OpsError::failed("backup already sealed")) };
    let mpath = partial.join(manifest::FILE);
    let text = serde_json::to_string_pretty(m).map_err(|e| OpsError::failed(format!("manifest: {e}")))?;
    let mut f = std::fs::File::create(&mpath).map_err(|e| io("cannot create", &mpath, e))?;
    f.write_all(text.as_bytes()).and_then(|_| f.sync_all()).map_err(|e| io("cannot write", &mpath, e))?;
    // Renaming over an empty directory is atomic on Linux; over anything else it fails, which
    // `prepare` already ruled out.
    std::fs::rename(&partial, out).map_err(|e| io("cannot move the finished backup to", out, e))?;
    guard.0 = None;
    Ok(())
}
