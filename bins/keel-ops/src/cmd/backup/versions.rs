//! The schema a backup was taken at: each Keel component's version, read from its own tracking
//! table inside the snapshot. A restore needs exactly the same versions.

use super::tables::db_error;
use crate::output::OpsError;
use sqlx::{PgConnection, SqliteConnection};
use std::collections::BTreeMap;

/// Component name → version (0 for a component not installed).
pub(crate) type Versions = BTreeMap<String, i64>;

/// Whether a table name is a component's migration bookkeeping (`keel_<component>_migrations`),
/// which a backup leaves out: `keel-ops migrate` writes it in the database restored into.
pub(crate) fn is_tracking_table(name: &str) -> bool {
    crate::cmd::migrate::SCHEMAS.iter().any(|s| s.tracking_table() == name)
}

pub(crate) async fn postgres(conn: &mut PgConnection) -> Result<Versions, OpsError> {
    let mut out = Versions::new();
    for s in crate::cmd::migrate::SCHEMAS {
        let table = s.tracking_table();
        let v: i64 = sqlx::query_scalar(&format!(
            "SELECT CASE WHEN to_regclass('{table}') IS NULL THEN 0 \
             ELSE (SELECT coalesce(max(version), 0) FROM {table}) END"
        ))
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| db_error("reading the schema versions", e))?;
        out.insert(s.component.to_owned(), v);
    }
    Ok(out)
}

pub(crate) async fn sqlite(conn: &mut SqliteConnection) -> Result<Versions, OpsError> {
    let mut out = Versions::new();
    for s in crate::cmd::migrate::SCHEMAS {
        let table = s.tracking_table();
        let exists: bool =
            sqlx::query_scalar("SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?")
                .bind(&table)
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| db_error("reading the schema versions", e))?;
        let v: i64 = if exists {
            sqlx::query_scalar(&format!("SELECT coalesce(max(version), 0) FROM {table}"))
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| db_error("reading the schema versions", e))?
        } else {
            0
        };
        out.insert(s.component.to_owned(), v);
    }
    Ok(out)
}

/// `billing=1, campaigns=1, …` for messages.
pub(crate) fn describe(v: &Versions) -> String {
    v.iter().map(|(c, n)| format!("{c}={n}")).collect::<Vec<_>>().join(", ")
}

/// The refusal when a database is not at the backup's versions, naming each component that
/// differs.
pub(crate) fn check(backup: &Versions, db: &Versions) -> Result<(), OpsError> {
    let components: std::collections::BTreeSet<&String> = backup.keys().chain(db.keys()).collect();
    let differ: Vec<String> = components
        .into_iter()
        .filter_map(|c| {
            let (b, d) = (backup.get(c).copied().unwrap_or(0), db.get(c).copied().unwrap_or(0));
            (b != d).then(|| format!("component {c}: the backup is at version {b}, the database at version {d}"))
        })
        .collect();
    if differ.is_empty() {
        return Ok(());
    }
    Err(OpsError::failed(format!(
        "schema versions differ ({}); nothing was restored. Restore into a database migrated to exactly the backup's versions ({}): `keel-ops migrate` with the release that took the backup",
        differ.join("; "),
        describe(backup)
    )))
}
