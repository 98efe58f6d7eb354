//! `keel-ops migrate [--dry-run]`.

use crate::exit;
use crate::output::{print_json, OpsError};
use keel_config::Settings;
use keel_storage::{connect, ConnectMode, Migrations};

pub(crate) async fn run(s: &Settings, dry_run: bool, json: bool) -> Result<u8, OpsError> {
    let db = connect(&s.database, ConnectMode::Eager).await?;
    let result = if dry_run {
        let pending = db.pending_migrations(Migrations::Embedded).await?;
        let current = db.schema_version().await?;
        if json {
            let list: Vec<_> =
                pending.iter().map(|m| serde_json::json!({"version": m.version, "name": m.description})).collect();
            print_json(&serde_json::json!({"dry_run": true, "current": current, "pending": list}));
        } else if pending.is_empty() {
            println!("database is at version {current}; nothing to apply");
        } else {
            println!("database is at version {current}; would apply:");
            for m in &pending {
                println!("  {:04} {}", m.version, m.description);
            }
        }
        Ok(exit::OK)
    } else {
        let report = db.migrate(Migrations::Embedded).await?;
        if json {
            let list: Vec<_> = report
                .applied
                .iter()
                .map(|m| serde_json::json!({"version": m.version, "name": m.description}))
                .collect();
            print_json(&serde_json::json!({"dry_run": false, "current": report.current, "applied": list}));
        } else if report.applied.is_empty() {
            println!("database is at version {}; nothing to apply", report.current);
        } else {
            for m in &report.applied {
                println!("applied {:04} {}", m.version, m.description);
            }
            println!("database is at version {}", report.current);
        }
        Ok(exit::OK)
    };
    db.close().await;
    result
}
