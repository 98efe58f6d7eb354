//! `keel-ops health [--url URL] [--deep] [--json]`: the service's own health answer, and with
//! `--deep` a look inside the database (versions, row counts, latest business dates, and on
//! PostgreSQL the row-level security picture).

use crate::exit;
use crate::output::{print_json, OpsError};
use clap::Args;
use keel_config::{Settings, Source};
use keel_storage::{connect, ConnectMode, Db};
use serde_json::{json, Value};

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Base URL of a running keel-api [default: http://127.0.0.1:8080]. With --remote and no
    /// --url, health comes through the operator API instead.
    #[arg(long)]
    pub(crate) url: Option<String>,
    /// Also connect to the database (DATABASE_URL) and report what is inside.
    #[arg(long)]
    pub(crate) deep: bool,
    #[arg(long)]
    pub(crate) json: bool,
}

/// Where `health` asks when neither --url nor --remote says otherwise.
const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// The main tables whose row counts `--deep` reports (missing ones are reported as such), with
/// the key each is reported under: `rows.<name>` keeps the name runbooks used before the tables
/// gained their `keel_` prefix, so a dashboard reading `rows.invoices` goes on working.
const TABLES: &[(&str, &str)] = &[
    ("keel_orgs", "orgs"),
    ("keel_users", "users"),
    ("keel_memberships", "memberships"),
    ("keel_invoices", "invoices"),
    ("keel_payments", "payments"),
    ("keel_jobs", "keel_jobs"),
    ("keel_jobs_completed", "keel_jobs_completed"),
    ("route_performance_events", "route_performance_events"),
];

pub(crate) async fn run(source: &dyn Source, a: HealthArgs) -> Result<u8, OpsError> {
    let mut out = serde_json::Map::new();
    let mut ok = true;
    {
        match http(a.url.as_deref().unwrap_or(DEFAULT_URL)).await {
            Ok((status, body)) => {
                ok &= status == 200 && body["status"] == "ok";
                out.insert("http".into(), json!({"status": status, "body": body}));
            }
            Err(e) if a.deep => {
                ok = false;
                out.insert("http".into(), json!({"error": e}));
            }
            Err(e) => return Err(OpsError::unavailable(e)),
        }
    }
    if a.deep {
        let s = Settings::load(source).map_err(|p| OpsError::usage(p.to_string()))?;
        let db = connect(&s.database, ConnectMode::Eager).await?;
        let deep = deep(&db).await.map_err(|e| OpsError::failed(format!("deep check failed: {e}")))?;
        db.close().await;
        out.insert("database".into(), deep);
    }
    let v = Value::Object(out);
    if a.json {
        print_json(&v);
    } else {
        if let Some(h) = v.get("http") {
            println!(
                "http      {} {}",
                h["status"],
                h["body"]["status"].as_str().unwrap_or_else(|| h["error"].as_str().unwrap_or(""))
            );
        }
        if let Some(d) = v.get("database") {
            let mut t = crate::table::new(&["database", "value"], &[]);
            for (k, val) in d.as_object().into_iter().flatten() {
                t.add_row([k.clone(), val.as_str().map_or_else(|| val.to_string(), str::to_owned)]);
            }
            crate::table::print(&t);
        }
    }
    Ok(if ok { exit::OK } else { exit::FAILED })
}

async fn http(base: &str) -> Result<(u16, Value), String> {
    let url = format!("{}/api/health", base.trim_end_matches('/'));
    let client =
        reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().map_err(|e| e.to_string())?;
    let r = client.get(&url).send().await.map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = r.status().as_u16();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, body))
}

async fn scalar_i64(db: &Db, q: &str) -> Result<Option<i64>, sqlx::Error> {
    match db {
        Db::Postgres(p) => sqlx::query_scalar(q).fetch_optional(p).await,
        Db::Sqlite(p) => sqlx::query_scalar(q).fetch_optional(p).await,
    }
}

async fn deep(db: &Db) -> Result<Value, keel_storage::StorageError> {
    let mut m = serde_json::Map::new();
    m.insert("backend".into(), json!(db.backend().as_str()));
    m.insert("server_version".into(), json!(db.server_version().await?));
    // One version per component (each has its own tracking table since 0.2).
    let mut versions = serde_json::Map::new();
    for schema in crate::cmd::migrate::SCHEMAS {
        versions.insert(schema.component.into(), json!(schema.version(db).await?));
    }
    m.insert("migrations".into(), Value::Object(versions));
    for (t, key) in TABLES {
        let exists = match db {
            Db::Postgres(p) => {
                sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL").bind(*t).fetch_one(p).await?
            }
            Db::Sqlite(p) => {
                sqlx::query_scalar::<_, bool>(
                    "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?",
                )
                .bind(*t)
                .fetch_one(p)
                .await?
            }
        };
        let v =
            if exists { json!(scalar_i64(db, &format!("SELECT count(*) FROM {t}")).await?) } else { json!("missing") };
        m.insert(format!("rows.{key}"), v);
    }
    let latest = |col: &str, table: &str| match db {
        Db::Postgres(_) => format!("SELECT (floor(extract(epoch FROM max({col})) * 1000))::bigint FROM {table}"),
        Db::Sqlite(_) => format!("SELECT max({col}) FROM {table}"),
    };
    for (name, col, table) in
        [("latest_invoice_at", "created_at", "keel_invoices"), ("latest_payment_at", "paid_at", "keel_payments")]
    {
        let ms = scalar_i64(db, &latest(col, table)).await.ok().flatten();
        let when = ms.and_then(chrono::DateTime::from_timestamp_millis).map(|t| t.to_rfc3339());
        m.insert(name.into(), json!(when));
    }
    if let Db::Postgres(p) = db {
        let policies: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')",
        )
        .fetch_one(p)
        .await?;
        let without: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND NOT c.relrowsecurity AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg_toast%' AND c.relname <> '_sqlx_migrations'",
        )
        .fetch_one(p)
        .await?;
        m.insert("rls_policies".into(), json!(policies));
        m.insert("tables_without_rls".into(), json!(without));
    }
    Ok(Value::Object(m))
}
