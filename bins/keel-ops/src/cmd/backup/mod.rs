//! `keel-ops backup export|verify|restore`: logical backups of the business tables as JSON
//! Lines with a checksummed manifest, on PostgreSQL and SQLite; a backup restores into either
//! backend, which is how a deployment moves from SQLite to PostgreSQL (and back).

mod export;
mod manifest;
mod portable;
mod restore;
mod sealed;
mod sqlite;
mod tables;
pub(crate) mod term;
mod verify;
mod versions;

use crate::exit;
use crate::output::{print_json, OpsError};
use clap::Subcommand;
use keel_config::Settings;
use keel_storage::{connect, ConnectMode, Db};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Export the business tables (all but `_sqlx_migrations`) as JSON Lines plus manifest.json,
    /// from one consistent snapshot. DIR must not exist or be empty.
    Export {
        /// Directory to create for the backup.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Only these tables (`name` or `schema.name`; comma-separated or repeated).
        #[arg(long, value_name = "TABLE", value_delimiter = ',', num_args = 1..)]
        tables: Vec<String>,
        /// Write sealed job values as `[sealed]` instead of their ciphertext (a restored job
        /// holding them can then never run). By default they stay sealed: only a process
        /// holding the job encryption key can open them, in the restored database too.
        #[arg(long)]
        redact_sealed: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Recompute every file's checksum and row count; exit 1 naming any file that differs.
    Verify {
        dir: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify, then load a backup into an empty database at the same schema versions, in one
    /// transaction (all rows or none). The database may be of the other backend: an SQLite
    /// backup restores into PostgreSQL and back.
    Restore {
        dir: PathBuf,
        /// Restore into a non-empty database, replacing the contents of the tables in the backup.
        #[arg(long)]
        force: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(s: &Settings, command: BackupCommand) -> Result<u8, OpsError> {
    match command {
        BackupCommand::Export { out, tables, redact_sealed, json } => {
            let db = connect(&s.database, ConnectMode::Eager).await?;
            let result = match &db {
                Db::Postgres(p) => export::export(p, &out, &tables, redact_sealed).await.map(|e| e.manifest),
                Db::Sqlite(p) => sqlite::export(p, &out, &tables, redact_sealed).await,
            };
            db.close().await;
            let m = result?;
            let total: u64 = m.tables.iter().map(|t| t.rows).sum();
            if json {
                print_json(&json!({"dir": out.display().to_string(), "manifest": m, "rows": total}));
            } else {
                let mut table = crate::table::new(&["table", "rows", "file"], &[1]);
                for t in &m.tables {
                    table.add_row([t.name(), t.rows.to_string(), t.file.clone()]);
                }
                crate::table::print(&table);
                println!(
                    "exported {total} rows from {} tables to {} (schema {})",
                    m.tables.len(),
                    out.display(),
                    versions::describe(&m.schema_versions)
                );
            }
            Ok(exit::OK)
        }
        BackupCommand::Verify { dir, json } => verify_cmd(&dir, json),
        BackupCommand::Restore { dir, force, json } => {
            let (m, problems) = verify::check(&dir)?;
            if !problems.is_empty() {
                return Err(OpsError::failed(format!(
                    "refusing to restore: the backup does not verify: {}",
                    describe(&problems)
                )));
            }
            let db = connect(&s.database, ConnectMode::Eager).await?;
            let result = match &db {
                Db::Postgres(p) => restore::restore(p, &dir, &m, force).await.map(|r| r.tables),
                Db::Sqlite(p) => sqlite::restore(p, &dir, &m, force).await,
            };
            db.close().await;
            // The restore is one transaction: whatever failed, the database is as it was.
            let tables = result.map_err(|mut e| {
                if !e.message.contains("nothing was restored") {
                    e.message.push_str("; nothing was restored (the database is as it was)");
                }
                e
            })?;
            let total: u64 = tables.iter().map(|(_, n)| n).sum();
            if json {
                let list: Vec<_> = tables.iter().map(|(t, n)| json!({"table": t, "rows": n})).collect();
                print_json(
                    &json!({"dir": dir.display().to_string(), "schema_versions": m.schema_versions, "tables": list, "rows": total}),
                );
            } else {
                println!("restored {total} rows into {} tables from {}", tables.len(), dir.display());
            }
            Ok(exit::OK)
        }
    }
}

fn describe(problems: &[verify::Problem]) -> String {
    problems.iter().map(|p| format!("{} {}", p.file, p.problem)).collect::<Vec<_>>().join("; ")
}

fn verify_cmd(dir: &Path, json: bool) -> Result<u8, OpsError> {
    let (m, problems) = verify::check(dir)?;
    if json {
        print_json(&json!({
            "dir": dir.display().to_string(), "ok": problems.is_empty(), "problems": problems,
            "tables": m.tables.len(), "rows": m.tables.iter().map(|t| t.rows).sum::<u64>(),
            "schema_versions": m.schema_versions, "created_at": m.created_at,
        }));
    } else if problems.is_empty() {
        println!(
            "backup OK: {} files, {} rows, schema {}, taken {}",
            m.tables.len(),
            m.tables.iter().map(|t| t.rows).sum::<u64>(),
            versions::describe(&m.schema_versions),
            m.created_at
        );
    } else {
        for p in &problems {
            eprintln!("{}: {}", p.file, p.problem);
        }
        eprintln!("backup verification FAILED: {} problem(s) in {}", problems.len(), dir.display());
    }
    Ok(if problems.is_empty() { exit::OK } else { exit::FAILED })
}
