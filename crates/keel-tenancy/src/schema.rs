//! Tenancy's own schema (orgs, users, memberships, sessions, API tokens, password resets,
//! platform operators and their activity log), installed by [`migrate`].

use keel_storage::{Db, Legacy, Migration, MigrationReport, Schema, StorageError};

/// tenancy's schema: its migrations for both backends, recorded in `keel_tenancy_migrations`.
pub static SCHEMA: Schema = Schema {
    component: "tenancy",
    migrations: &[
        Migration {
            version: 1,
            description: "tenancy",
            postgres: include_str!("../migrations/postgres/0001_tenancy.sql"),
            sqlite: include_str!("../migrations/sqlite/0001_tenancy.sql"),
        },
        Migration {
            version: 2,
            description: "operators",
            postgres: include_str!("../migrations/postgres/0002_operators.sql"),
            sqlite: include_str!("../migrations/sqlite/0002_operators.sql"),
        },
    ],
    legacy: Some(Legacy {
        requires: &[(1, "foundation"), (5, "tenancy")],
        also_owns: &[],
        baseline: 1,
        postgres: "",
        sqlite: "",
        renames: &["orgs", "users", "memberships", "sessions", "api_tokens", "password_resets"],
    }),
};

/// Installs or upgrades tenancy's tables in `db` (the one call a host makes at startup, beside its
/// own migrations; see [`Schema::migrate`]).
pub async fn migrate(db: &Db) -> Result<MigrationReport, StorageError> {
    SCHEMA.migrate(db).await
}
