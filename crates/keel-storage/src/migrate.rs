//! Schema migrations: one embedded set per backend, same versions and names in both.

use crate::{Db, StorageError};
use sqlx::migrate::{MigrateError, Migrator};
use std::collections::HashSet;

static POSTGRES: Migrator = sqlx::migrate!("../../migrations/postgres");
static SQLITE: Migrator = sqlx::migrate!("../../migrations/sqlite");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationInfo {
    pub version: i64,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Migrations applied by this run, in order.
    pub applied: Vec<MigrationInfo>,
    /// The schema version after the run.
    pub current: i64,
}

/// Which migrations to run; tests build their own set to prove failure handling.
pub enum Migrations<'a> {
    Embedded,
    Custom(&'a Migrator),
}

impl Db {
    fn migrator<'a>(&self, which: &Migrations<'a>) -> &'a Migrator {
        match (which, self) {
            (Migrations::Custom(m), _) => m,
            (Migrations::Embedded, Db::Postgres(_)) => &POSTGRES,
            (Migrations::Embedded, Db::Sqlite(_)) => &SQLITE,
        }
    }

    /// Versions recorded as successfully applied.
    async fn applied_versions(&self) -> Result<HashSet<i64>, StorageError> {
        let exists: bool = match self {
            Db::Postgres(p) => {
                sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(p).await?
            }
            Db::Sqlite(p) => {
                sqlx::query_scalar(
                    "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                )
                .fetch_one(p)
                .await?
            }
        };
        if !exists {
            return Ok(HashSet::new());
        }
        let q = "SELECT version FROM _sqlx_migrations WHERE success";
        let v: Vec<i64> = match self {
            Db::Postgres(p) => sqlx::query_scalar(q).fetch_all(p).await?,
            Db::Sqlite(p) => sqlx::query_scalar(q).fetch_all(p).await?,
        };
        Ok(v.into_iter().collect())
    }

    /// The highest applied version, 0 for an empty database.
    pub async fn schema_version(&self) -> Result<i64, StorageError> {
        Ok(self.applied_versions().await?.into_iter().max().unwrap_or(0))
    }

    /// What `migrate` would apply (`keel-ops migrate --dry-run`).
    pub async fn pending_migrations(&self, which: Migrations<'_>) -> Result<Vec<MigrationInfo>, StorageError> {
        let applied = self.applied_versions().await?;
        let m = self.migrator(&which);
        if let Some(v) = applied.iter().find(|v| !m.iter().any(|x| x.version == **v)) {
            return Err(StorageError::UnknownMigration { version: *v });
        }
        Ok(m.iter()
            .filter(|x| x.migration_type.is_up_migration() && !applied.contains(&x.version))
            .map(|x| MigrationInfo { version: x.version, description: x.description.to_string() })
            .collect())
    }

    /// Applies every pending migration, each in its own transaction. On failure the database
    /// stays at the last migration that succeeded, and the error names the one that failed.
    pub async fn migrate(&self, which: Migrations<'_>) -> Result<MigrationReport, StorageError> {
        let pending = self.pending_migrations(Migrations::Custom(self.migrator(&which))).await?;
        let m = self.migrator(&which);
        let result = match self {
            Db::Postgres(p) => m.run(p).await,
            Db::Sqlite(p) => m.run(p).await,
        };
        match result {
            Ok(()) => Ok(MigrationReport { applied: pending, current: self.schema_version().await? }),
            Err(MigrateError::ExecuteMigration(cause, version)) => {
                let description =
                    m.iter().find(|x| x.version == version).map(|x| x.description.to_string()).unwrap_or_default();
                Err(StorageError::Migration {
                    version,
                    description,
                    cause: cause.to_string(),
                    current: self.schema_version().await.unwrap_or(0),
                })
            }
            Err(MigrateError::Execute(e)) => Err(StorageError::Query(e)),
            Err(MigrateError::VersionMissing(v)) => Err(StorageError::UnknownMigration { version: v }),
            Err(other) => Err(StorageError::Migration {
                version: 0,
                description: "bookkeeping".into(),
                cause: other.to_string(),
                current: self.schema_version().await.unwrap_or(0),
            }),
        }
    }
}
