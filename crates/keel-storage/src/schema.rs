//! Per-component schemas: each storing crate embeds its own migrations and records them in its
//! own tracking table, so a host service's `_sqlx_migrations` is never touched.
//!
//! Why not `sqlx::migrate!`/`Migrator`: sqlx 0.8 records every migrator in the one
//! `_sqlx_migrations` table, keyed by version alone, so two components (or a component and its
//! host) that both have a version 1 collide. River (`river_migration`, one line per component)
//! and graphile-worker (its own schema) solve it the same way we do here: a tracking table per
//! component. The runner is small: apply each pending migration in its own transaction, under
//! a lock, and record it.

use crate::{Db, StorageError};
use sqlx::Row;

/// One migration of a component, with its SQL for each backend (same version, same meaning).
#[derive(Debug)]
pub struct Migration {
    /// Position in the component's sequence, starting at 1, without gaps.
    pub version: i64,
    /// A short name, recorded beside the version.
    pub description: &'static str,
    /// The statements for PostgreSQL (several are allowed; they run in one transaction).
    pub postgres: &'static str,
    /// The statements for SQLite (several are allowed; they run in one transaction).
    pub sqlite: &'static str,
}

/// How a component takes over its tables from a database made by Keel 0.1, whose single
/// migration set was recorded in `_sqlx_migrations` (versions 1–8).
#[derive(Debug)]
pub struct Legacy {
    /// `_sqlx_migrations` rows (version, description) that must all be present for the adoption;
    /// they prove the component's tables exist in their 0.1 shape.
    pub requires: &'static [(i64, &'static str)],
    /// Further 0.1 rows this component owns (applied or not); removed with the required ones.
    pub also_owns: &'static [(i64, &'static str)],
    /// The component version the adopted tables correspond to after the adoption.
    pub baseline: i64,
    /// Statements run first on PostgreSQL, bringing the 0.1 tables to `baseline`'s shape under
    /// their old names (say, an index a late 0.1 migration added). Never a table rebuild.
    pub postgres: &'static str,
    /// The same for SQLite.
    pub sqlite: &'static str,
    /// 0.1 table names that gain the `keel_` prefix. Their indexes and constraints are renamed
    /// with them (`orgs_pkey` → `keel_orgs_pkey`), so an adopted database has exactly the names
    /// of a fresh install; foreign keys of other tables follow the rename on both backends.
    pub renames: &'static [&'static str],
}

/// A component's whole schema: its name, its migrations in order, and optionally how it adopts
/// a 0.1 database. Crates expose one as a `static` and a `migrate(&Db)` function calling
/// [`Schema::migrate`].
#[derive(Debug)]
pub struct Schema {
    /// The component's name (`queue`, `tenancy`, …): lowercase ASCII letters and underscores.
    /// Its versions are recorded in the table `keel_<component>_migrations`.
    pub component: &'static str,
    /// Every migration, versions 1, 2, 3, … in order.
    pub migrations: &'static [Migration],
    /// How to adopt tables made by Keel 0.1, for components that existed then.
    pub legacy: Option<Legacy>,
}

/// One applied (or pending) migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationInfo {
    /// Its version within its component.
    pub version: i64,
    /// Its name.
    pub description: String,
}

/// What [`Schema::migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The component migrated.
    pub component: &'static str,
    /// True when this run took the component's tables over from a Keel 0.1 database.
    pub adopted_legacy: bool,
    /// Migrations applied by this run, in order.
    pub applied: Vec<MigrationInfo>,
    /// The component's version after the run.
    pub current: i64,
}

/// The name of the table in which 0.1 recorded its migrations (and where a host's sqlx
/// migrations live); read only to adopt a 0.1 database, written only to remove 0.1's rows.
const LEGACY_TABLE: &str = "_sqlx_migrations";

impl Schema {
    /// The component's tracking table.
    pub fn tracking_table(&self) -> String {
        format!("keel_{}_migrations", self.component)
    }

    fn check_shape(&self) -> Result<(), StorageError> {
        let name_ok = !self.component.is_empty()
            && self.component.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit());
        let seq_ok = self.migrations.iter().enumerate().all(|(i, m)| m.version == i as i64 + 1);
        if name_ok && seq_ok {
            Ok(())
        } else {
            Err(StorageError::Migration {
                version: 0,
                description: format!("schema of component {:?}", self.component),
                cause: "component names are lowercase ASCII and versions run 1, 2, 3, … without gaps".into(),
                current: 0,
            })
        }
    }

    /// The component's current version (0 when nothing of it is installed).
    pub async fn version(&self, db: &Db) -> Result<i64, StorageError> {
        Ok(self.applied(db).await?.into_iter().max().unwrap_or(0))
    }

    /// What [`Schema::migrate`] would apply, without changing anything. A 0.1 database that
    /// would be adopted lists the migrations after the adoption's baseline.
    pub async fn pending(&self, db: &Db) -> Result<Vec<MigrationInfo>, StorageError> {
        self.check_shape()?;
        let applied = self.applied(db).await?;
        self.refuse_unknown(&applied)?;
        let mut from = applied.iter().copied().max().unwrap_or(0);
        if applied.is_empty() {
            if let Some(l) = &self.legacy {
                if legacy_state(db, l).await? == LegacyState::Complete {
                    from = l.baseline;
                }
            }
        }
        Ok(self
            .migrations
            .iter()
            .filter(|m| m.version > from)
            .map(|m| MigrationInfo { version: m.version, description: m.description.to_owned() })
            .collect())
    }

    /// Installs or upgrades the component: adopts a Keel 0.1 database on first run (renaming its
    /// tables in place), then applies every pending migration, each in its own transaction
    /// under a lock, so concurrent processes starting together apply each migration once. On
    /// failure the component stays at the last migration that succeeded and the error names the
    /// one that failed.
    pub async fn migrate(&self, db: &Db) -> Result<MigrationReport, StorageError> {
        self.check_shape()?;
        let mut report =
            MigrationReport { component: self.component, adopted_legacy: false, applied: Vec::new(), current: 0 };
        let mut steps: Vec<Step<'_>> = Vec::new();
        if self.legacy.is_some() {
            steps.push(Step::Adopt);
        }
        steps.extend(self.migrations.iter().map(Step::Apply));
        for step in steps {
            match self.run_step(db, &step).await {
                Ok(Outcome::Done) => match step {
                    Step::Adopt => report.adopted_legacy = true,
                    Step::Apply(m) => {
                        report.applied.push(MigrationInfo { version: m.version, description: m.description.into() })
                    }
                },
                Ok(Outcome::Skipped) => {}
                Err(e) => {
                    let (version, description) = match step {
                        Step::Adopt => (0, "adopt the Keel 0.1 tables".to_owned()),
                        Step::Apply(m) => (m.version, m.description.to_owned()),
                    };
                    return Err(match e {
                        StorageError::Query(cause) => StorageError::Migration {
                            version,
                            description: format!("{}: {description}", self.component),
                            cause: cause.to_string(),
                            current: self.version(db).await.unwrap_or(0),
                        },
                        other => other,
                    });
                }
            }
        }
        report.current = self.version(db).await?;
        Ok(report)
    }

    fn refuse_unknown(&self, applied: &[i64]) -> Result<(), StorageError> {
        let newest = self.migrations.len() as i64;
        match applied.iter().find(|v| **v > newest) {
            Some(v) => Err(StorageError::UnknownMigration { component: self.component, version: *v }),
            None => Ok(()),
        }
    }

    async fn applied(&self, db: &Db) -> Result<Vec<i64>, StorageError> {
        let table = self.tracking_table();
        if !table_exists(db, &table).await? {
            return Ok(Vec::new());
        }
        let q = format!("SELECT version FROM {table}");
        Ok(match db {
            Db::Postgres(p) => sqlx::query_scalar(&q).fetch_all(p).await?,
            Db::Sqlite(p) => sqlx::query_scalar(&q).fetch_all(p).await?,
        })
    }

    /// One step in one transaction. The lock (an advisory transaction lock on PostgreSQL,
    /// `BEGIN IMMEDIATE` on SQLite) is taken before anything is read, so the check "already
    /// applied?" and the apply cannot interleave with another process doing the same.
    ///
    /// Boxed as `Send` so that a host can spawn `migrate`; a test spawns it. Raw SQL goes through
    /// `Executor::execute(conn, raw_sql(..))`, never `raw_sql(..).execute(conn)`: the latter is
    /// an `async fn` whose future the compiler cannot prove `Send` for every borrow of the
    /// connection (rust-lang/rust#102211), which made this whole future non-`Send`.
    fn run_step<'a>(&'a self, db: &'a Db, step: &'a Step<'a>) -> BoxFut<'a, Result<Outcome, StorageError>> {
        Box::pin(self.run_step_inner(db, step))
    }

    async fn run_step_inner(&self, db: &Db, step: &Step<'_>) -> Result<Outcome, StorageError> {
        let table = self.tracking_table();
        let create = match db {
            Db::Postgres(_) => format!(
                "CREATE TABLE IF NOT EXISTS {table} (version bigint PRIMARY KEY, description text NOT NULL, \
                 installed_at timestamptz NOT NULL DEFAULT now())"
            ),
            Db::Sqlite(_) => format!(
                "CREATE TABLE IF NOT EXISTS {table} (version INTEGER PRIMARY KEY, description TEXT NOT NULL, \
                 installed_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)))"
            ),
        };
        match db {
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(lock_key(self.component))
                    .execute(&mut *tx)
                    .await?;
                sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(&create)).await?;
                let applied: Vec<i64> =
                    sqlx::query_scalar(&format!("SELECT version FROM {table}")).fetch_all(&mut *tx).await?;
                self.refuse_unknown(&applied)?;
                let outcome = match step {
                    Step::Adopt => {
                        let Some(l) = &self.legacy else { return Ok(Outcome::Skipped) };
                        if !applied.is_empty() || legacy_state_pg(&mut tx, l).await? != LegacyState::Complete {
                            return Ok(Outcome::Skipped);
                        }
                        sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(l.postgres)).await?;
                        rename_pg(&mut tx, l.renames).await?;
                        for m in self.migrations.iter().take_while(|m| m.version <= l.baseline) {
                            sqlx::query(&format!("INSERT INTO {table} (version, description) VALUES ($1, $2)"))
                                .bind(m.version)
                                .bind(m.description)
                                .execute(&mut *tx)
                                .await?;
                        }
                        for (v, d) in l.requires.iter().chain(l.also_owns) {
                            sqlx::query(&format!("DELETE FROM {LEGACY_TABLE} WHERE version = $1 AND description = $2"))
                                .bind(*v)
                                .bind(*d)
                                .execute(&mut *tx)
                                .await?;
                        }
                        let left: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {LEGACY_TABLE}"))
                            .fetch_one(&mut *tx)
                            .await?;
                        if left == 0 {
                            sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(&format!("DROP TABLE {LEGACY_TABLE}")))
                                .await?;
                        }
                        Outcome::Done
                    }
                    Step::Apply(m) => {
                        if applied.contains(&m.version) {
                            return Ok(Outcome::Skipped);
                        }
                        sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(m.postgres)).await?;
                        sqlx::query(&format!("INSERT INTO {table} (version, description) VALUES ($1, $2)"))
                            .bind(m.version)
                            .bind(m.description)
                            .execute(&mut *tx)
                            .await?;
                        Outcome::Done
                    }
                };
                tx.commit().await?;
                Ok(outcome)
            }
            Db::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(&create)).await?;
                let applied: Vec<i64> =
                    sqlx::query_scalar(&format!("SELECT version FROM {table}")).fetch_all(&mut *tx).await?;
                self.refuse_unknown(&applied)?;
                let outcome = match step {
                    Step::Adopt => {
                        let Some(l) = &self.legacy else { return Ok(Outcome::Skipped) };
                        if !applied.is_empty() || legacy_state_sqlite(&mut tx, l).await? != LegacyState::Complete {
                            return Ok(Outcome::Skipped);
                        }
                        sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(l.sqlite)).await?;
                        rename_sqlite(&mut tx, l.renames).await?;
                        for m in self.migrations.iter().take_while(|m| m.version <= l.baseline) {
                            sqlx::query(&format!("INSERT INTO {table} (version, description) VALUES (?, ?)"))
                                .bind(m.version)
                                .bind(m.description)
                                .execute(&mut *tx)
                                .await?;
                        }
                        for (v, d) in l.requires.iter().chain(l.also_owns) {
                            sqlx::query(&format!("DELETE FROM {LEGACY_TABLE} WHERE version = ? AND description = ?"))
                                .bind(*v)
                                .bind(*d)
                                .execute(&mut *tx)
                                .await?;
                        }
                        let left: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {LEGACY_TABLE}"))
                            .fetch_one(&mut *tx)
                            .await?;
                        if left == 0 {
                            sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(&format!("DROP TABLE {LEGACY_TABLE}")))
                                .await?;
                        }
                        Outcome::Done
                    }
                    Step::Apply(m) => {
                        if applied.contains(&m.version) {
                            return Ok(Outcome::Skipped);
                        }
                        sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(m.sqlite)).await?;
                        sqlx::query(&format!("INSERT INTO {table} (version, description) VALUES (?, ?)"))
                            .bind(m.version)
                            .bind(m.description)
                            .execute(&mut *tx)
                            .await?;
                        Outcome::Done
                    }
                };
                tx.commit().await?;
                Ok(outcome)
            }
        }
    }
}

type BoxFut<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

enum Step<'a> {
    Adopt,
    Apply(&'a Migration),
}

enum Outcome {
    Done,
    Skipped,
}

#[derive(Debug, PartialEq, Eq)]
enum LegacyState {
    /// No 0.1 rows of this component: a fresh install.
    Absent,
    /// Every required 0.1 row is there: adopt.
    Complete,
}

/// A stable advisory-lock key per component (FNV-1a of its name, in the i64 range
/// PostgreSQL's advisory locks take), so components never wait on each other.
fn lock_key(component: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"keel-migrate:".iter().chain(component.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

async fn table_exists(db: &Db, table: &str) -> Result<bool, StorageError> {
    Ok(match db {
        Db::Postgres(p) => sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(table).fetch_one(p).await?,
        Db::Sqlite(p) => {
            sqlx::query_scalar("SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?")
                .bind(table)
                .fetch_one(p)
                .await?
        }
    })
}

fn judge(l: &Legacy, rows: &[(i64, String)]) -> Result<LegacyState, StorageError> {
    let has = |(v, d): &(i64, &str)| rows.iter().any(|(rv, rd)| rv == v && rd == d);
    let present = l.requires.iter().filter(|r| has(r)).count();
    if present == 0 {
        Ok(LegacyState::Absent)
    } else if present == l.requires.len() {
        Ok(LegacyState::Complete)
    } else {
        Err(StorageError::PartialLegacy {
            missing: l.requires.iter().filter(|r| !has(r)).map(|(v, d)| format!("{v} ({d})")).collect(),
        })
    }
}

async fn legacy_state(db: &Db, l: &Legacy) -> Result<LegacyState, StorageError> {
    match db {
        Db::Postgres(p) => {
            let mut conn = p.acquire().await?;
            legacy_state_pg(&mut conn, l).await
        }
        Db::Sqlite(p) => {
            let mut conn = p.acquire().await?;
            legacy_state_sqlite(&mut conn, l).await
        }
    }
}

fn legacy_state_pg<'a>(
    conn: &'a mut sqlx::PgConnection,
    l: &'a Legacy,
) -> BoxFut<'a, Result<LegacyState, StorageError>> {
    Box::pin(async move {
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(LEGACY_TABLE).fetch_one(&mut *conn).await?;
        if !exists {
            return Ok(LegacyState::Absent);
        }
        let rows = sqlx::query(&format!("SELECT version, description FROM {LEGACY_TABLE} WHERE success"))
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        judge(l, &rows)
    })
}

fn legacy_state_sqlite<'a>(
    conn: &'a mut sqlx::SqliteConnection,
    l: &'a Legacy,
) -> BoxFut<'a, Result<LegacyState, StorageError>> {
    Box::pin(async move {
        let exists: bool =
            sqlx::query_scalar("SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?")
                .bind(LEGACY_TABLE)
                .fetch_one(&mut *conn)
                .await?;
        if !exists {
            return Ok(LegacyState::Absent);
        }
        let rows = sqlx::query(&format!("SELECT version, description FROM {LEGACY_TABLE} WHERE success"))
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        judge(l, &rows)
    })
}

/// Renames 0.1 tables to `keel_<name>`, then their constraints and indexes, so an adopted
/// database carries exactly the names a fresh install has. `ALTER … RENAME` only changes the
/// catalog: no table or index is rebuilt.
fn rename_pg<'a>(conn: &'a mut sqlx::PgConnection, tables: &'a [&'a str]) -> BoxFut<'a, Result<(), StorageError>> {
    Box::pin(async move {
        for t in tables {
            sqlx::Executor::execute(&mut *conn, sqlx::raw_sql(&format!("ALTER TABLE {t} RENAME TO keel_{t}"))).await?;
            // Constraints first: renaming a primary key or unique constraint renames its index.
            let cons: Vec<String> = sqlx::query_scalar(
            "SELECT conname::text FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname NOT LIKE 'keel\\_%'",
        )
        .bind(format!("keel_{t}"))
        .fetch_all(&mut *conn)
        .await?;
            for c in cons {
                sqlx::Executor::execute(
                    &mut *conn,
                    sqlx::raw_sql(&format!("ALTER TABLE keel_{t} RENAME CONSTRAINT \"{c}\" TO \"keel_{c}\"")),
                )
                .await?;
            }
            let idx: Vec<String> = sqlx::query_scalar(
                "SELECT i.relname::text FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
             WHERE x.indrelid = to_regclass($1) AND i.relname NOT LIKE 'keel\\_%'",
            )
            .bind(format!("keel_{t}"))
            .fetch_all(&mut *conn)
            .await?;
            for i in idx {
                sqlx::Executor::execute(
                    &mut *conn,
                    sqlx::raw_sql(&format!("ALTER INDEX \"{i}\" RENAME TO \"keel_{i}\"")),
                )
                .await?;
            }
        }
        Ok(())
    })
}

/// SQLite renames the table and rewrites the foreign keys pointing at it (and its automatic
/// indexes); it cannot rename an index, so each named index is dropped and created again under
/// its new name (an index build, never a table rebuild).
fn rename_sqlite<'a>(
    conn: &'a mut sqlx::SqliteConnection,
    tables: &'a [&'a str],
) -> BoxFut<'a, Result<(), StorageError>> {
    Box::pin(async move {
        for t in tables {
            sqlx::Executor::execute(&mut *conn, sqlx::raw_sql(&format!("ALTER TABLE {t} RENAME TO keel_{t}"))).await?;
            let idx: Vec<(String, String)> = sqlx::query_as(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL \
             AND name NOT LIKE 'keel\\_%' ESCAPE '\\'",
            )
            .bind(format!("keel_{t}"))
            .fetch_all(&mut *conn)
            .await?;
            for (name, sql) in idx {
                let Some(at) = sql.find(name.as_str()) else { continue };
                let new_sql = format!("{}keel_{}", &sql[..at], &sql[at..]);
                sqlx::Executor::execute(&mut *conn, sqlx::raw_sql(&format!("DROP INDEX \"{name}\""))).await?;
                sqlx::Executor::execute(&mut *conn, sqlx::raw_sql(&new_sql)).await?;
            }
        }
        Ok(())
    })
}

/// Migrates several components in the given order (dependencies first: a component whose tables
/// reference another's comes after it) and returns one report each.
pub async fn migrate_all(db: &Db, schemas: &[&Schema]) -> Result<Vec<MigrationReport>, StorageError> {
    let mut out = Vec::with_capacity(schemas.len());
    for s in schemas {
        let r = s.migrate(db).await?;
        if r.adopted_legacy {
            tracing::info!(component = s.component, "adopted the Keel 0.1 tables of this component");
        }
        for m in &r.applied {
            tracing::info!(component = s.component, version = m.version, description = %m.description, "migration applied");
        }
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_differ_per_component_and_are_stable() {
        assert_eq!(lock_key("queue"), lock_key("queue"));
        assert_ne!(lock_key("queue"), lock_key("tenancy"));
    }

    #[test]
    fn legacy_judgement_needs_every_required_row() {
        let l = Legacy {
            requires: &[(1, "a"), (5, "b")],
            also_owns: &[],
            baseline: 1,
            postgres: "",
            sqlite: "",
            renames: &[],
        };
        assert_eq!(judge(&l, &[]).unwrap(), LegacyState::Absent);
        assert_eq!(judge(&l, &[(1, "x".into()), (5, "y".into())]).unwrap(), LegacyState::Absent, "a host's own rows");
        assert_eq!(judge(&l, &[(1, "a".into()), (5, "b".into())]).unwrap(), LegacyState::Complete);
        let err = judge(&l, &[(1, "a".into())]).unwrap_err().to_string();
        assert!(err.contains("5 (b)"), "{err}");
    }
}
