//! `keel-ops db audit`: lints a PostgreSQL schema for the problems teams otherwise find by
//! hand (duplicate and unused indexes, unindexed foreign keys, views and policies that defeat
//! row-level security or make it slow, tenant tables without it, tables without keys,
//! functions with a caller-controlled search path). Findings carry a level, the object, why it
//! matters and the fix; suppressions need a reason and may expire; `--fail-on` sets the exit.

mod args;
mod catalog;
mod finding;
mod lints;
mod node_tree;
mod report;
mod suppress;
#[cfg(test)]
mod tests;

pub(crate) use args::AuditArgs;

use crate::cmd::backup::term::Paint;
use crate::exit;
use crate::output::{print_json, OpsError};
use crate::progress::Progress;
use keel_config::Settings;
use keel_storage::{connect, ConnectMode, Db};

pub(crate) async fn run(s: &Settings, args: AuditArgs) -> Result<u8, OpsError> {
    // Read the suppressions first: a bad file is a usage error before any connection is made.
    let mut rules = Vec::new();
    if !args.no_builtin_suppressions {
        rules.extend(suppress::parse(suppress::BUILTIN, suppress::BUILTIN_SOURCE).map_err(OpsError::failed)?);
    }
    if let Some(path) = &args.suppress {
        let text = std::fs::read_to_string(path)
            .map_err(|e| OpsError::usage(format!("cannot read the suppressions file {}: {e}", path.display())))?;
        rules.extend(suppress::parse(&text, &path.display().to_string()).map_err(OpsError::usage)?);
    }
    if args.tenant_columns.iter().any(|c| c.trim().is_empty()) {
        return Err(OpsError::usage("--tenant-column must name a column, e.g. --tenant-column org_id"));
    }

    let db = connect(&s.database, ConnectMode::Eager).await?;
    let pool = match &db {
        Db::Postgres(p) => p.clone(),
        Db::Sqlite(_) => {
            db.close().await;
            return Err(OpsError::unavailable(
                "the audit needs PostgreSQL: it reads PostgreSQL's catalogs (indexes, row-level security, policies), which SQLite does not have. Set DATABASE_URL=postgres://… to audit a PostgreSQL database",
            ));
        }
    };
    let progress = Progress::stderr();
    let loaded = catalog::load(&pool, &args.tenant_columns, &args.per_row_functions, &mut |step| {
        progress.phase(&format!("auditing: reading {step}…"))
    })
    .await;
    progress.finish();
    db.close().await;
    let cat = loaded?;

    let mut notes = Vec::new();
    let cfg = lints::Config { unused_index_min_size: args.unused_index_min_size };
    let findings = lints::run_all(&cat, &cfg, &mut notes);
    let mut applied = suppress::apply(findings, &rules, chrono::Utc::now().date_naive());
    // Keel's built-in entries name Keel's tables, which a database may simply not have.
    applied.unused.retain(|s| s.source != suppress::BUILTIN_SOURCE);
    let failed = applied.findings.iter().any(|f| f.level >= args.fail_on);

    let outcome = report::Outcome { cat: &cat, applied: &applied, fail_on: args.fail_on, failed, notes: &notes };
    if args.json {
        print_json(&report::to_json(&outcome));
    } else {
        print!("{}", report::to_text(&outcome, Paint::stdout()));
    }
    Ok(if failed { exit::FAILED } else { exit::OK })
}
