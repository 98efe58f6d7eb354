//! `keel-ops migrate [--dry-run]`: installs or upgrades every Keel component, each in its own
//! tracking table, and reports each component's version.

use crate::exit;
use crate::output::{print_json, OpsError};
use keel_config::Settings;
use keel_storage::{connect, ConnectMode, Schema};

/// Every Keel component, in installation order (tenancy first: billing references its orgs).
/// The same list as `keel_api::SCHEMAS` (a keel-api test holds the two equal; keel-ops cannot
/// depend on keel-api).
pub static SCHEMAS: &[&Schema] = &[
    &keel_tenancy::SCHEMA,
    &keel_billing::SCHEMA,
    &keel_queue::SCHEMA,
    &keel_ratelimit::SCHEMA,
    &keel_telemetry::SCHEMA,
    &keel_worker::CAMPAIGNS_SCHEMA,
];

pub(crate) async fn run(s: &Settings, dry_run: bool, json: bool) -> Result<u8, OpsError> {
    let db = connect(&s.database, ConnectMode::Eager).await?;
    let result = if dry_run { dry(&db, json).await } else { apply(&db, json).await };
    db.close().await;
    result
}

async fn dry(db: &keel_storage::Db, json: bool) -> Result<u8, OpsError> {
    let mut out = Vec::new();
    for schema in SCHEMAS {
        let pending = schema.pending(db).await?;
        let current = schema.version(db).await?;
        if !json {
            if pending.is_empty() {
                println!("{:<10} version {current}; nothing to apply", schema.component);
            } else {
                println!("{:<10} version {current}; would apply:", schema.component);
                for m in &pending {
                    println!("  {:04} {}", m.version, m.description);
                }
            }
        }
        let list: Vec<_> =
            pending.iter().map(|m| serde_json::json!({"version": m.version, "name": m.description})).collect();
        out.push(serde_json::json!({"component": schema.component, "current": current, "pending": list}));
    }
    if json {
        print_json(&serde_json::json!({"dry_run": true, "components": out}));
    }
    Ok(exit::OK)
}

async fn apply(db: &keel_storage::Db, json: bool) -> Result<u8, OpsError> {
    let reports = keel_storage::migrate_all(db, SCHEMAS).await?;
    if json {
        let list: Vec<_> = reports
            .iter()
            .map(|r| {
                let applied: Vec<_> = r
                    .applied
                    .iter()
                    .map(|m| serde_json::json!({"version": m.version, "name": m.description}))
                    .collect();
                serde_json::json!({
                    "component": r.component,
                    "current": r.current,
                    "adopted_legacy": r.adopted_legacy,
                    "applied": applied,
                })
            })
            .collect();
        print_json(&serde_json::json!({"dry_run": false, "components": list}));
        return Ok(exit::OK);
    }
    for r in &reports {
        if r.adopted_legacy {
            println!("{:<10} adopted the tables of the Keel 0.1 database", r.component);
        }
        for m in &r.applied {
            println!("{:<10} applied {:04} {}", r.component, m.version, m.description);
        }
        println!("{:<10} version {}", r.component, r.current);
    }
    Ok(exit::OK)
}
