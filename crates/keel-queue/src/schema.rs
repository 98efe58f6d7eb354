//! The queue's own schema (`keel_jobs`, `keel_jobs_completed`, pauses and cron tables), installed by [`migrate`].

use keel_storage::{Db, Legacy, Migration, MigrationReport, Schema, StorageError};

/// queue's schema: its migrations for both backends, recorded in `keel_queue_migrations`.
pub static SCHEMA: Schema = Schema {
    component: "queue",
    migrations: &[
        Migration {
            version: 1,
            description: "queue",
            postgres: include_str!("../migrations/postgres/0001_queue.sql"),
            sqlite: include_str!("../migrations/sqlite/0001_queue.sql"),
        },
        Migration {
            version: 2,
            description: "sealed",
            postgres: include_str!("../migrations/postgres/0002_sealed.sql"),
            sqlite: include_str!("../migrations/sqlite/0002_sealed.sql"),
        },
        Migration {
            version: 3,
            description: "trace_context",
            postgres: include_str!("../migrations/postgres/0003_trace_context.sql"),
            sqlite: include_str!("../migrations/sqlite/0003_trace_context.sql"),
        },
        Migration {
            version: 4,
            description: "completed",
            postgres: include_str!("../migrations/postgres/0004_completed.sql"),
            sqlite: include_str!("../migrations/sqlite/0004_completed.sql"),
        },
    ],
    legacy: Some(Legacy {
        requires: &[(2, "queue")],
        also_owns: &[],
        baseline: 1,
        postgres: "",
        sqlite: "",
        renames: &[],
    }),
};

/// Installs or upgrades queue's tables in `db` (the one call a host makes at startup, beside its
/// own migrations; see [`Schema::migrate`]).
pub async fn migrate(db: &Db) -> Result<MigrationReport, StorageError> {
    SCHEMA.migrate(db).await
}
