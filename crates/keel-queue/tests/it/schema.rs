//! Adopting keel-queue beside a host's own migrations: `keel_queue::migrate` installs only the
//! queue's tables and leaves the host's `_sqlx_migrations` exactly as it was.

use keel_storage::{Backend, Db};
use keel_testkit::{backend_tests, TestDb};
use std::collections::BTreeSet;

backend_tests!(schemas: &[]; beside_a_hosts_sqlx_migrations_only_the_queue_tables_appear);

async fn tables(db: &Db) -> BTreeSet<String> {
    let q = match db.backend() {
        Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
        Backend::Postgres => {
            "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
        }
    };
    let v: Vec<String> = match db {
        Db::Sqlite(p) => sqlx::query_scalar(q).fetch_all(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_scalar(q).fetch_all(p).await.unwrap(),
    };
    v.into_iter().collect()
}

type Row = (i64, String, bool, Vec<u8>);

async fn host_rows(db: &Db) -> Vec<Row> {
    let q = "SELECT version, description, success, checksum FROM _sqlx_migrations ORDER BY version";
    match db {
        Db::Sqlite(p) => sqlx::query_as(q).fetch_all(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_as(q).fetch_all(p).await.unwrap(),
    }
}

async fn beside_a_hosts_sqlx_migrations_only_the_queue_tables_appear(t: TestDb) {
    // The host's own migrations 1–3, applied by sqlx as any sqlx-based service does.
    let dir = tempfile::tempdir().unwrap();
    let host = [
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)",
        "CREATE TABLE sessions (id TEXT PRIMARY KEY, user_id INTEGER NOT NULL)",
        "CREATE TABLE host_notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
    ];
    for (i, sql) in host.iter().enumerate() {
        std::fs::write(dir.path().join(format!("{:04}_host_{i}.sql", i + 1)), sql).unwrap();
    }
    let m = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    match &t.db {
        Db::Sqlite(p) => m.run(p).await.unwrap(),
        Db::Postgres(p) => m.run(p).await.unwrap(),
    }
    let rows_before = host_rows(&t.db).await;
    let before = tables(&t.db).await;

    let report = keel_queue::migrate(&t.db).await.unwrap();
    assert_eq!((report.component, report.current, report.adopted_legacy), ("queue", 4, false));

    assert_eq!(host_rows(&t.db).await, rows_before, "the host's _sqlx_migrations is untouched");
    let added: BTreeSet<String> = tables(&t.db).await.difference(&before).cloned().collect();
    let expected: BTreeSet<String> = [
        "keel_jobs",
        "keel_jobs_completed",
        "keel_queue_pauses",
        "keel_cron_schedule",
        "keel_cron_runs",
        "keel_cron_pauses",
        "keel_queue_migrations",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(added, expected, "only the queue's tables (and its tracking table) are created");
    // The host's migrator still sees its own state as complete.
    match &t.db {
        Db::Sqlite(p) => m.run(p).await.unwrap(),
        Db::Postgres(p) => m.run(p).await.unwrap(),
    }
}
