//! The shared limiter's own schema (`keel_rate_limits`), installed by [`migrate`].

use keel_storage::{Db, Legacy, Migration, MigrationReport, Schema, StorageError};

/// ratelimit's schema: its migrations for both backends, recorded in `keel_ratelimit_migrations`.
pub static SCHEMA: Schema = Schema {
    component: "ratelimit",
    migrations: &[Migration {
        version: 1,
        description: "rate_limits",
        postgres: include_str!("../migrations/postgres/0001_rate_limits.sql"),
        sqlite: include_str!("../migrations/sqlite/0001_rate_limits.sql"),
    }],
    legacy: Some(Legacy {
        requires: &[(3, "ratelimit")],
        also_owns: &[],
        baseline: 1,
        postgres: "",
        sqlite: "",
        renames: &[],
    }),
};

/// Installs or upgrades ratelimit's tables in `db` (the one call a host makes at startup, beside its
/// own migrations; see [`Schema::migrate`]).
pub async fn migrate(db: &Db) -> Result<MigrationReport, StorageError> {
    SCHEMA.migrate(db).await
}
