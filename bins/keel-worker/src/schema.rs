//! The worker's schemas: the campaign kind's own table (`keel_campaign_batches`) and the list of components the worker installs at startup.

use keel_storage::{Db, Legacy, Migration, MigrationReport, Schema, StorageError};

/// The campaign kind's schema, recorded in `keel_campaigns_migrations`.
pub static CAMPAIGNS_SCHEMA: Schema = Schema {
    component: "campaigns",
    migrations: &[Migration {
        version: 1,
        description: "campaign_batches",
        postgres: include_str!("../migrations/postgres/0001_campaign_batches.sql"),
        sqlite: include_str!("../migrations/sqlite/0001_campaign_batches.sql"),
    }],
    legacy: Some(Legacy {
        requires: &[(7, "campaigns")],
        also_owns: &[],
        baseline: 1,
        postgres: "",
        sqlite: "",
        renames: &["campaign_batches"],
    }),
};

/// Every component the worker reads or writes, in installation order: tenancy (the password
/// reset kind reads accounts and writes reset tokens), the queue, telemetry (its
/// retention task prunes route timings) and the campaign kind's table.
pub static SCHEMAS: &[&Schema] =
    &[&keel_tenancy::SCHEMA, &keel_queue::SCHEMA, &keel_telemetry::SCHEMA, &CAMPAIGNS_SCHEMA];

/// Installs or upgrades every component in [`SCHEMAS`].
pub async fn migrate(db: &Db) -> Result<Vec<MigrationReport>, StorageError> {
    keel_storage::migrate_all(db, SCHEMAS).await
}
