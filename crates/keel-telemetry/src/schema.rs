//! Telemetry's own schema (`route_performance_events`, `keel_telemetry_route_days`), installed by [`migrate`].

use keel_storage::{Db, Legacy, Migration, MigrationReport, Schema, StorageError};

/// telemetry's schema: its migrations for both backends, recorded in `keel_telemetry_migrations`.
pub static SCHEMA: Schema = Schema {
    component: "telemetry",
    migrations: &[
        Migration {
            version: 1,
            description: "route_performance_events",
            postgres: include_str!("../migrations/postgres/0001_route_performance_events.sql"),
            sqlite: include_str!("../migrations/sqlite/0001_route_performance_events.sql"),
        },
        Migration {
            version: 2,
            description: "route_days",
            postgres: include_str!("../migrations/postgres/0002_route_days.sql"),
            sqlite: include_str!("../migrations/sqlite/0002_route_days.sql"),
        },
    ],
    legacy: Some(Legacy {
        requires: &[(4, "telemetry")],
        also_owns: &[],
        baseline: 1,
        postgres: "",
        sqlite: "",
        renames: &[],
    }),
};

/// Installs or upgrades telemetry's tables in `db` (the one call a host makes at startup, beside its
/// own migrations; see [`Schema::migrate`]).
pub async fn migrate(db: &Db) -> Result<MigrationReport, StorageError> {
    SCHEMA.migrate(db).await
}
