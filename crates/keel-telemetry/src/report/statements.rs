//! Top SQL statements from pg_stat_statements, read without ever resetting the statistics.
//!
//! The extension's columns changed across versions (PostgreSQL 13 split `total_time` into
//! `total_plan_time` + `total_exec_time`), and its installed version can lag the server's, so
//! the columns are read from the catalog, never guessed from `server_version`.

use crate::TelemetryError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{self, PgConnection, Row};

/// Statements listed.
pub const TOP_STATEMENTS: usize = 20;

/// How to turn the extension on, shown when it is missing.
pub const HOW_TO_ENABLE: &str = "Add pg_stat_statements to shared_preload_libraries (keep any libraries already listed), restart PostgreSQL, then run CREATE EXTENSION IF NOT EXISTS pg_stat_statements; in this database. On a self-managed server: ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'; then restart (e.g. pg_ctlcluster <version> main restart). Managed services (Supabase, RDS, Cloud SQL) preload it already or through their parameter settings. Grant pg_read_all_stats to the reporting role so every statement's text is visible.";

/// One normalized statement of this database.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatementRow {
    /// pg_stat_statements' `queryid` (absent when the role may not see it).
    pub queryid: Option<i64>,
    /// The normalized text with whitespace collapsed and password literals masked.
    pub query: String,
    /// Times executed since the statistics were last reset.
    pub calls: i64,
    /// Total execution time, in milliseconds.
    pub total_ms: f64,
    /// Mean execution time, in milliseconds.
    pub mean_ms: f64,
    /// Rows returned or affected, in total.
    pub rows: i64,
}

/// The report's SQL section: the top statements, or why they cannot be shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StatementsSection {
    /// pg_stat_statements is installed and readable.
    Available {
        /// The installed extension's version.
        extension_version: String,
        /// The timing columns read (`total_exec_time`/`mean_exec_time` from 1.8, PostgreSQL 13,
        /// on; `total_time`/`mean_time` before).
        time_columns: String,
        /// From pg_stat_statements_info (1.9+): when the statistics were last reset.
        stats_reset: Option<DateTime<Utc>>,
        /// Entries evicted because `pg_stat_statements.max` was reached (1.9+).
        deallocations: Option<i64>,
        /// The top [`TOP_STATEMENTS`] by total time.
        statements: Vec<StatementRow>,
        /// Set when the role cannot read other roles' statements (no `pg_read_all_stats`).
        warning: Option<String>,
    },
    /// The extension is not usable; not an error, the section explains and says how to enable it.
    Unavailable {
        /// Why it is not usable (not installed, not preloaded, …).
        reason: String,
        /// What to do: [`HOW_TO_ENABLE`].
        how_to_enable: String,
    },
    /// SQLite has no statement statistics.
    PostgresOnly {
        /// The explanation shown in the report.
        note: String,
    },
}

/// The columns read from the installed view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeColumns {
    pub(crate) total: &'static str,
    pub(crate) mean: &'static str,
}

pub(crate) fn choose_columns(cols: &[String]) -> Option<TimeColumns> {
    let has = |c: &str| cols.iter().any(|x| x == c);
    if !(has("query") && has("calls") && has("rows") && has("dbid")) {
        return None;
    }
    if has("total_exec_time") && has("mean_exec_time") {
        Some(TimeColumns { total: "total_exec_time", mean: "mean_exec_time" })
    } else if has("total_time") && has("mean_time") {
        Some(TimeColumns { total: "total_time", mean: "mean_time" })
    } else {
        None
    }
}

pub(crate) fn top_statements_sql(schema_quoted: &str, c: TimeColumns) -> String {
    format!(
        "SELECT queryid, query, calls, {total}::float8 AS total_ms, {mean}::float8 AS mean_ms, rows \
         FROM {schema_quoted}.pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         ORDER BY {total} DESC, calls DESC LIMIT {TOP_STATEMENTS}",
        total = c.total,
        mean = c.mean,
    )
}

fn preloaded(setting: &str) -> bool {
    setting.split(',').any(|l| l.trim().trim_matches('"') == "pg_stat_statements")
}

pub(crate) async fn statements_section(conn: &mut PgConnection) -> Result<StatementsSection, TelemetryError> {
    let op = "pg_stat_statements section";
    let err = |e| TelemetryError::Database { operation: op, source: e };
    // Hidden from pg_settings for roles without pg_read_all_settings: then `None`, and whether
    // the library is loaded is found out by reading the view.
    let preload: Option<String> =
        sqlx::query_scalar("SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'")
            .fetch_optional(&mut *conn)
            .await
            .map_err(err)?;
    let ext: Option<(String, String)> = sqlx::query_as(
        "SELECT e.extversion, quote_ident(n.nspname) FROM pg_extension e \
         JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(err)?;
    let packaged: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements')")
            .fetch_one(&mut *conn)
            .await
            .map_err(err)?;
    match availability(packaged, preload.as_deref(), ext) {
        Ok((version, schema)) => read_statements(conn, &schema, version).await,
        Err(reason) => Ok(unavailable(reason)),
    }
}

/// Decides from the catalog alone whether the statistics can be read: `Ok((extension version,
/// quoted schema))` to read them, or why not (the section's reason). `preload` is
/// `shared_preload_libraries` (`None` when the role may not see it: then the view itself is
/// read and a "not loaded" error there is explained instead, see [`read_statements`]); `ext`
/// is the extension created in this database, if any.
pub(crate) fn availability(
    packaged: bool,
    preload: Option<&str>,
    ext: Option<(String, String)>,
) -> Result<(String, String), String> {
    if !packaged {
        return Err(
            "pg_stat_statements is not installed on this server (Debian/Ubuntu: it ships with postgresql-<version>; elsewhere install postgresql-contrib).".into(),
        );
    }
    if let Some(p) = preload.filter(|p| !preloaded(p)) {
        return Err(not_loaded(Some(p)));
    }
    ext.ok_or_else(|| {
        "pg_stat_statements is not created in this database (CREATE EXTENSION IF NOT EXISTS pg_stat_statements;), so its statistics cannot be read here.".into()
    })
}

fn unavailable(reason: String) -> StatementsSection {
    StatementsSection::Unavailable { reason, how_to_enable: HOW_TO_ENABLE.into() }
}

fn not_loaded(setting: Option<&str>) -> String {
    match setting {
        Some(p) => format!(
            "pg_stat_statements is not loaded: shared_preload_libraries is {p:?}, so no statement statistics are collected."
        ),
        None => "pg_stat_statements is not loaded (the extension is created but the library is not in shared_preload_libraries), so no statement statistics are collected.".into(),
    }
}

/// Reads the view `<schema_quoted>.pg_stat_statements` (already quoted by `quote_ident`).
/// Must run inside a transaction.
pub(crate) async fn read_statements(
    conn: &mut PgConnection,
    schema_quoted: &str,
    extension_version: String,
) -> Result<StatementsSection, TelemetryError> {
    let op = "pg_stat_statements section";
    let err = |e| TelemetryError::Database { operation: op, source: e };
    let cols: Vec<String> = sqlx::query_scalar(
        "SELECT attname::text FROM pg_attribute \
         WHERE attrelid = to_regclass($1 || '.pg_stat_statements') AND attnum > 0 AND NOT attisdropped",
    )
    .bind(schema_quoted)
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    let Some(tc) = choose_columns(&cols) else {
        return Ok(StatementsSection::Unavailable {
            reason: format!(
                "pg_stat_statements {extension_version} has columns this report does not recognise ({}).",
                cols.join(", ")
            ),
            how_to_enable: "ALTER EXTENSION pg_stat_statements UPDATE; brings the view to the server's version.".into(),
        });
    };
    let full_visibility: bool = sqlx::query_scalar(
        "SELECT rolsuper OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(err)?;
    // The view raises 55000 when the library is not preloaded (which a role without
    // pg_read_all_settings could not check beforehand); a savepoint keeps the report's
    // transaction usable so that case becomes an explained section.
    sqlx::query("SAVEPOINT keel_pgss").execute(&mut *conn).await.map_err(err)?;
    let rows = match sqlx::query(&top_statements_sql(schema_quoted, tc)).fetch_all(&mut *conn).await {
        Ok(rows) => rows,
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55000") => {
            sqlx::query("ROLLBACK TO SAVEPOINT keel_pgss").execute(&mut *conn).await.map_err(err)?;
            return Ok(unavailable(not_loaded(None)));
        }
        Err(e) => return Err(err(e)),
    };
    sqlx::query("RELEASE SAVEPOINT keel_pgss").execute(&mut *conn).await.map_err(err)?;
    let mut statements = Vec::with_capacity(rows.len());
    for r in rows {
        statements.push(StatementRow {
            queryid: r.try_get("queryid").map_err(err)?,
            query: clean_query(&r.try_get::<Option<String>, _>("query").map_err(err)?.unwrap_or_default()),
            calls: r.try_get("calls").map_err(err)?,
            total_ms: r.try_get("total_ms").map_err(err)?,
            mean_ms: r.try_get("mean_ms").map_err(err)?,
            rows: r.try_get("rows").map_err(err)?,
        });
    }
    let info: Option<(Option<DateTime<Utc>>, Option<i64>)> =
        match sqlx::query_scalar::<_, bool>("SELECT to_regclass($1 || '.pg_stat_statements_info') IS NOT NULL")
            .bind(schema_quoted)
            .fetch_one(&mut *conn)
            .await
            .map_err(err)?
        {
            true => Some(
                sqlx::query_as(&format!("SELECT stats_reset, dealloc FROM {schema_quoted}.pg_stat_statements_info"))
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(err)?,
            ),
            false => None,
        };
    let hidden = statements.iter().filter(|s| s.query == "<insufficient privilege>").count();
    let warning = (!full_visibility).then(|| {
        format!(
            "The reporting role lacks pg_read_all_stats: statements of other roles are hidden or shown as <insufficient privilege> ({hidden} of {} here), so texts and counts are incomplete. GRANT pg_read_all_stats TO <role>;",
            statements.len()
        )
    });
    Ok(StatementsSection::Available {
        extension_version,
        time_columns: format!("{}, {}", tc.total, tc.mean),
        stats_reset: info.and_then(|i| i.0),
        deallocations: info.and_then(|i| i.1),
        statements,
        warning,
    })
}

/// Collapses whitespace and masks what normalization leaves behind in utility statements
/// (`ALTER ROLE … PASSWORD '…'` is not normalized) and email addresses.
pub(crate) fn clean_query(q: &str) -> String {
    let collapsed = q.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(collapsed.len());
    let mut rest = collapsed.as_str();
    while let Some(i) = rest.to_ascii_lowercase().find("password") {
        let (before, after) = rest.split_at(i + "password".len());
        out.push_str(before);
        let trimmed = after.trim_start();
        if let Some(lit) = trimmed.strip_prefix('\'') {
            out.push_str(" '***'");
            // Skip to the closing quote ('' is an escaped quote inside the literal).
            let mut chars = lit.char_indices().peekable();
            let mut end = lit.len();
            while let Some((j, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().map(|(_, n)| *n) == Some('\'') {
                        chars.next();
                        continue;
                    }
                    end = j + 1;
                    break;
                }
            }
            rest = &lit[end..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    crate::redact(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &str) -> Vec<String> {
        names.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn columns_follow_the_installed_version() {
        let v17 = cols("userid dbid toplevel queryid query plans total_plan_time calls total_exec_time mean_exec_time rows shared_blk_read_time");
        let v12 = cols(
            "userid dbid queryid query calls total_time min_time max_time mean_time stddev_time rows blk_read_time",
        );
        assert_eq!(choose_columns(&v17), Some(TimeColumns { total: "total_exec_time", mean: "mean_exec_time" }));
        assert_eq!(choose_columns(&v12), Some(TimeColumns { total: "total_time", mean: "mean_time" }));
        assert_eq!(choose_columns(&cols("userid dbid query calls rows")), None);
        let sql = top_statements_sql("public", choose_columns(&v12).unwrap());
        assert!(
            sql.contains("total_time::float8") && sql.contains("ORDER BY total_time DESC") && !sql.contains("reset")
        );
    }

    /// The PostgreSQL 12 column names (extension 1.7), served by a view over the real one:
    /// the reader finds `total_time`/`mean_time` in the catalog and reads them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn legacy_columns_are_read_from_the_catalog() {
        let Some(t) = keel_testkit::TestDb::postgres("keel_telemetry::statements::legacy", &[&crate::SCHEMA]).await
        else {
            return;
        };
        let p = t.db.pg().unwrap();
        sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").execute(p).await.unwrap();
        sqlx::query("CREATE SCHEMA \"Legacy Stats\"").execute(p).await.unwrap();
        sqlx::query(
            "CREATE VIEW \"Legacy Stats\".pg_stat_statements AS SELECT userid, dbid, queryid, query, calls, \
             total_exec_time AS total_time, mean_exec_time AS mean_time, rows FROM public.pg_stat_statements",
        )
        .execute(p)
        .await
        .unwrap();
        for _ in 0..3 {
            // Heavy enough to rank in the top 20 of this database, above its migrations.
            sqlx::query("SELECT count(*) FROM generate_series(1, 500000)").fetch_one(p).await.unwrap();
        }
        // The report always reads inside its transaction (the reader uses a savepoint).
        let mut tx = p.begin().await.unwrap();
        let section = read_statements(&mut tx, "\"Legacy Stats\"", "1.7".into()).await.unwrap();
        tx.rollback().await.unwrap();
        let StatementsSection::Available { time_columns, statements, stats_reset, .. } = section else {
            panic!("{section:?}")
        };
        assert_eq!(time_columns, "total_time, mean_time");
        assert_eq!(stats_reset, None, "1.7 has no pg_stat_statements_info");
        let s = statements
            .iter()
            .find(|s| s.query.starts_with("SELECT count(*) FROM generate_series"))
            .unwrap_or_else(|| panic!("probe missing: {statements:#?}"));
        assert_eq!(s.calls, 3);
    }

    /// What a server without the library in shared_preload_libraries reports (CI preloads it,
    /// so the real server never takes this branch): the section explains and says how to enable.
    #[test]
    fn a_server_without_the_preload_is_explained() {
        let ext = || Some(("1.10".to_owned(), "public".to_owned()));
        // The stock setting is empty; other libraries may be listed without this one.
        for setting in ["", "auto_explain", "auto_explain, pg_stat_statements_extra"] {
            for created in [ext(), None] {
                let reason = availability(true, Some(setting), created).unwrap_err();
                assert_eq!(
                    reason,
                    format!("pg_stat_statements is not loaded: shared_preload_libraries is {setting:?}, so no statement statistics are collected.")
                );
                let StatementsSection::Unavailable { how_to_enable, .. } = unavailable(reason) else { unreachable!() };
                assert!(how_to_enable.contains("shared_preload_libraries") && how_to_enable.contains("restart"));
            }
        }
        // Loaded but not created in this database; not packaged at all; and ready to read.
        assert!(availability(true, Some("pg_stat_statements"), None).unwrap_err().contains("CREATE EXTENSION"));
        assert!(availability(false, Some(""), None).unwrap_err().contains("not installed"));
        assert_eq!(
            availability(true, Some("auto_explain,pg_stat_statements"), ext()),
            Ok(("1.10".into(), "public".into()))
        );
        // A role that cannot see the setting reads the view; its "not loaded" error is explained there.
        assert_eq!(availability(true, None, ext()), Ok(("1.10".into(), "public".into())));
    }

    /// The view raises SQLSTATE 55000 when the library is not preloaded, which a role without
    /// pg_read_all_settings cannot check beforehand. A view raising exactly that (the server
    /// here does preload the library) gets the explanation, and the report's transaction stays
    /// usable for the sections after it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_view_refusing_to_read_is_explained() {
        let Some(t) = keel_testkit::TestDb::postgres("keel_telemetry::statements::not_loaded", &[&crate::SCHEMA]).await
        else {
            return;
        };
        let p = t.db.pg().unwrap();
        sqlx::raw_sql(
            r#"CREATE SCHEMA unloaded;
            CREATE FUNCTION unloaded.pgss() RETURNS TABLE (userid oid, dbid oid, queryid int8, query text,
                calls int8, total_exec_time float8, mean_exec_time float8, rows int8)
            LANGUAGE plpgsql AS $$ BEGIN
                RAISE EXCEPTION 'pg_stat_statements must be loaded via "shared_preload_libraries"' USING ERRCODE = '55000';
            END $$;
            CREATE VIEW unloaded.pg_stat_statements AS SELECT * FROM unloaded.pgss();"#,
        )
        .execute(p)
        .await
        .unwrap();
        let mut tx = p.begin().await.unwrap();
        let section = read_statements(&mut tx, "unloaded", "1.10".into()).await.unwrap();
        assert_eq!(section, unavailable(not_loaded(None)));
        let StatementsSection::Unavailable { reason, .. } = &section else { unreachable!() };
        assert!(reason.contains("not loaded") && reason.contains("shared_preload_libraries"), "{reason}");
        let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut *tx).await.unwrap();
        assert_eq!(one, 1, "the transaction survived the failed read");
        tx.rollback().await.unwrap();
    }

    #[test]
    fn preload_list_is_parsed() {
        assert!(preloaded("pg_stat_statements"));
        assert!(preloaded("auto_explain, \"pg_stat_statements\""));
        assert!(!preloaded(""));
        assert!(!preloaded("pg_stat_statements_extra"));
    }

    #[test]
    fn passwords_and_emails_are_masked() {
        assert_eq!(
            clean_query("ALTER ROLE app\n   PASSWORD 'it''s secret' VALID UNTIL 'x'"),
            "ALTER ROLE app PASSWORD '***' VALID UNTIL 'x'"
        );
        assert_eq!(
            clean_query("select * from t where email = 'jane@example.com'"),
            "select * from t where email = 'j***@example.com'"
        );
        assert_eq!(
            clean_query("SELECT password_hash FROM keel_users WHERE id = $1"),
            "SELECT password_hash FROM keel_users WHERE id = $1"
        );
    }
}
