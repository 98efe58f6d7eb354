//! Conformance suite for the storage layer, run against SQLite and PostgreSQL.

/// The components every test database of this binary has installed.
const SCHEMAS: &[&keel_storage::Schema] = &[];

use keel_storage::{Backend, Db, Legacy, Migration, Schema, SessionLimits, StorageError};
use keel_testkit::{backend_tests, TestDb};

mod pool;
mod sqlite_rows;

backend_tests!(
    schemas_install_once_in_their_own_tracking_table,
    failed_migration_keeps_last_good_version,
    a_hosts_sqlx_migrations_are_left_exactly_as_they_were,
    legacy_tables_are_adopted_by_renaming_with_rows_intact,
    a_newer_database_is_refused,
    concurrent_migrations_apply_each_version_once,
    ping_and_version,
    session_limits_stop_long_statements_on_the_server
);

static DEMO: Schema = Schema {
    component: "demo",
    migrations: &[
        Migration {
            version: 1,
            description: "first",
            postgres: "CREATE TABLE keel_demo_a (id bigint PRIMARY KEY); CREATE TABLE keel_demo_b (id bigint);",
            sqlite: "CREATE TABLE keel_demo_a (id INTEGER PRIMARY KEY); CREATE TABLE keel_demo_b (id INTEGER);",
        },
        Migration {
            version: 2,
            description: "second",
            postgres: "CREATE INDEX keel_demo_b_id_idx ON keel_demo_b (id);",
            sqlite: "CREATE INDEX keel_demo_b_id_idx ON keel_demo_b (id);",
        },
    ],
    legacy: None,
};

async fn count(db: &Db, q: &str) -> i64 {
    match db {
        Db::Sqlite(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
    }
}

async fn exec(db: &Db, q: &str) {
    match db {
        Db::Sqlite(p) => sqlx::raw_sql(q).execute(p).await.map(drop).unwrap(),
        Db::Postgres(p) => sqlx::raw_sql(q).execute(p).await.map(drop).unwrap(),
    }
}

async fn table_exists(db: &Db, name: &str) -> bool {
    let q = match db.backend() {
        Backend::Sqlite => format!("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '{name}'"),
        Backend::Postgres => format!("SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relname = '{name}'"),
    };
    count(db, &q).await == 1
}

async fn index_exists(db: &Db, name: &str) -> bool {
    let q = match db.backend() {
        Backend::Sqlite => format!("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = '{name}'"),
        Backend::Postgres => format!("SELECT count(*) FROM pg_class WHERE relkind = 'i' AND relname = '{name}'"),
    };
    count(db, &q).await == 1
}

async fn schemas_install_once_in_their_own_tracking_table(t: TestDb) {
    assert_eq!(DEMO.version(&t.db).await.unwrap(), 0);
    assert_eq!(DEMO.pending(&t.db).await.unwrap().len(), 2);
    let r = DEMO.migrate(&t.db).await.unwrap();
    assert_eq!((r.component, r.current, r.applied.len(), r.adopted_legacy), ("demo", 2, 2, false));
    assert!(table_exists(&t.db, "keel_demo_migrations").await);
    assert!(!table_exists(&t.db, "_sqlx_migrations").await, "never the host's bookkeeping table");
    let again = DEMO.migrate(&t.db).await.unwrap();
    assert!(again.applied.is_empty(), "second run applies nothing");
    assert_eq!(again.current, 2);
    assert!(DEMO.pending(&t.db).await.unwrap().is_empty());
}

static BROKEN: Schema = Schema {
    component: "broken",
    migrations: &[
        Migration {
            version: 1,
            description: "good",
            postgres: "CREATE TABLE good_one (id integer);",
            sqlite: "CREATE TABLE good_one (id INTEGER);",
        },
        Migration {
            version: 2,
            description: "bad",
            postgres: "CREATE TABLE half_done (id integer); INSERT INTO no_such_table VALUES (1);",
            sqlite: "CREATE TABLE half_done (id INTEGER); INSERT INTO no_such_table VALUES (1);",
        },
        Migration {
            version: 3,
            description: "after",
            postgres: "CREATE TABLE never_reached (id integer);",
            sqlite: "CREATE TABLE never_reached (id INTEGER);",
        },
    ],
    legacy: None,
};

async fn failed_migration_keeps_last_good_version(t: TestDb) {
    let err = BROKEN.migrate(&t.db).await.unwrap_err();
    match &err {
        StorageError::Migration { version, description, current, .. } => {
            assert_eq!(*version, 2);
            assert_eq!(description, "broken: bad");
            assert_eq!(*current, 1);
        }
        other => panic!("expected a migration error, got {other:?}"),
    }
    assert!(err.to_string().contains("migration 2 (broken: bad) failed"), "{err}");
    assert_eq!(BROKEN.version(&t.db).await.unwrap(), 1);
    assert!(!table_exists(&t.db, "half_done").await, "the failed migration was rolled back as a whole");
    assert!(!table_exists(&t.db, "never_reached").await);
    // The pool is healthy afterwards: no connection went back inside the failed transaction.
    for _ in 0..8 {
        t.db.ping().await.unwrap();
    }
}

async fn a_hosts_sqlx_migrations_are_left_exactly_as_they_were(t: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    for (i, name) in ["notes", "tags", "more"].iter().enumerate() {
        std::fs::write(
            dir.path().join(format!("{:04}_{name}.sql", i + 1)),
            format!("CREATE TABLE host_{name} (id INTEGER);"),
        )
        .unwrap();
    }
    let host = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    match &t.db {
        Db::Sqlite(p) => host.run(p).await.unwrap(),
        Db::Postgres(p) => host.run(p).await.unwrap(),
    }
    let snapshot = "SELECT version, description, success, checksum FROM _sqlx_migrations ORDER BY version";
    let before: Vec<(i64, String, bool, Vec<u8>)> = match &t.db {
        Db::Sqlite(p) => sqlx::query_as(snapshot).fetch_all(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_as(snapshot).fetch_all(p).await.unwrap(),
    };
    assert_eq!(before.len(), 3);
    DEMO.migrate(&t.db).await.unwrap();
    let after: Vec<(i64, String, bool, Vec<u8>)> = match &t.db {
        Db::Sqlite(p) => sqlx::query_as(snapshot).fetch_all(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_as(snapshot).fetch_all(p).await.unwrap(),
    };
    assert_eq!(before, after);
    assert_eq!(DEMO.version(&t.db).await.unwrap(), 2);
}

static ADOPTER: Schema = Schema {
    component: "widgets",
    migrations: &[
        Migration {
            version: 1,
            description: "widgets",
            postgres: "CREATE TABLE keel_widgets (id bigint PRIMARY KEY, name text NOT NULL UNIQUE); \
                       CREATE INDEX keel_widgets_name_idx ON keel_widgets (name);",
            sqlite: "CREATE TABLE keel_widgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE); \
                     CREATE INDEX keel_widgets_name_idx ON keel_widgets (name);",
        },
        Migration {
            version: 2,
            description: "colour",
            postgres: "ALTER TABLE keel_widgets ADD COLUMN colour text;",
            sqlite: "ALTER TABLE keel_widgets ADD COLUMN colour TEXT;",
        },
    ],
    legacy: Some(Legacy {
        requires: &[(4, "widgets")],
        also_owns: &[],
        baseline: 1,
        postgres: "",
        sqlite: "",
        renames: &["widgets"],
    }),
};

async fn legacy_tables_are_adopted_by_renaming_with_rows_intact(t: TestDb) {
    // A database as the 0.1 release left it: unprefixed tables and its rows in _sqlx_migrations.
    let (int, text) = match t.db.backend() {
        Backend::Sqlite => ("INTEGER", "TEXT"),
        Backend::Postgres => ("bigint", "text"),
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("0004_widgets.sql"),
        format!(
            "CREATE TABLE widgets (id {int} PRIMARY KEY, name {text} NOT NULL UNIQUE); \
             CREATE INDEX widgets_name_idx ON widgets (name); \
             CREATE TABLE parts (id {int} PRIMARY KEY, widget_id {int} REFERENCES widgets (id));"
        ),
    )
    .unwrap();
    let old = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    match &t.db {
        Db::Sqlite(p) => old.run(p).await.unwrap(),
        Db::Postgres(p) => old.run(p).await.unwrap(),
    }
    exec(&t.db, "INSERT INTO widgets (id, name) VALUES (1, 'a'), (2, 'b'); INSERT INTO parts VALUES (10, 2);").await;
    assert_eq!(ADOPTER.pending(&t.db).await.unwrap().len(), 1, "only what follows the baseline");

    let r = ADOPTER.migrate(&t.db).await.unwrap();
    assert!(r.adopted_legacy);
    assert_eq!(r.applied.iter().map(|m| m.version).collect::<Vec<_>>(), vec![2]);
    assert_eq!(r.current, 2);
    assert!(table_exists(&t.db, "keel_widgets").await && !table_exists(&t.db, "widgets").await);
    assert_eq!(count(&t.db, "SELECT count(*) FROM keel_widgets").await, 2, "rows intact");
    assert!(index_exists(&t.db, "keel_widgets_name_idx").await && !index_exists(&t.db, "widgets_name_idx").await);
    if t.db.backend() == Backend::Postgres {
        assert!(index_exists(&t.db, "keel_widgets_pkey").await, "constraint indexes renamed too");
        assert!(index_exists(&t.db, "keel_widgets_name_key").await);
    }
    // The other table's foreign key follows the rename.
    exec(&t.db, "INSERT INTO parts VALUES (11, 1)").await;
    assert!(!table_exists(&t.db, "_sqlx_migrations").await, "0.1's bookkeeping removed once empty");
    // Idempotent afterwards.
    let again = ADOPTER.migrate(&t.db).await.unwrap();
    assert!(!again.adopted_legacy && again.applied.is_empty());
}

async fn a_newer_database_is_refused(t: TestDb) {
    DEMO.migrate(&t.db).await.unwrap();
    exec(&t.db, "INSERT INTO keel_demo_migrations (version, description) VALUES (3, 'from the future')").await;
    let err = DEMO.migrate(&t.db).await.unwrap_err();
    assert!(matches!(err, StorageError::UnknownMigration { component: "demo", version: 3 }), "{err:?}");
    assert!(err.to_string().contains("newer release"), "{err}");
}

async fn concurrent_migrations_apply_each_version_once(t: TestDb) {
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let db = t.db.clone();
            tokio::spawn(async move { DEMO.migrate(&db).await })
        })
        .collect();
    let mut applied = 0;
    for r in runs {
        applied += r.await.unwrap().unwrap().applied.len();
    }
    assert_eq!(applied, 2, "each migration applied by exactly one of the racers");
    assert_eq!(count(&t.db, "SELECT count(*) FROM keel_demo_migrations").await, 2);
}

async fn ping_and_version(t: TestDb) {
    t.db.ping().await.unwrap();
    let v = t.db.server_version().await.unwrap();
    match t.db.backend() {
        Backend::Postgres => assert!(v.chars().next().is_some_and(|c| c.is_ascii_digit()), "{v}"),
        Backend::Sqlite => assert!(v.starts_with("SQLite 3."), "{v}"),
    }
    assert_eq!(t.db.capabilities().listen_notify, t.db.backend() == Backend::Postgres);
}

#[tokio::test]
async fn unwritable_data_dir_names_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let target = keel_config::DatabaseTarget::Sqlite { path: file.join("sub/keel.db") };
    let err = keel_storage::connect(&target, keel_storage::ConnectMode::Eager).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("cannot create the SQLite database") && msg.contains("DATABASE_URL"), "{msg}");
    assert!(!file.join("sub").exists(), "nothing half-created");
}

#[tokio::test]
async fn unreachable_postgres_is_a_clear_error_without_password() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let target = keel_config::DatabaseTarget::parse(Some("postgres://keel:s3cret-pw@127.0.0.1:1/keel")).unwrap();
    let err = keel_storage::connect(&target, keel_storage::ConnectMode::Eager).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("cannot reach the database"), "{msg}");
    assert!(!msg.contains("s3cret-pw"), "{msg}");
    assert!(err.is_unavailable());
    // Lazy mode returns a pool at once; the first query then fails and says so.
    let lazy = keel_storage::connect(&target, keel_storage::ConnectMode::Lazy).await.unwrap();
    assert!(lazy.ping().await.is_err());
}

/// A pool opened with a statement timeout has the server cancel a statement that outlives it
/// (on Postgres); migrations are not subject to it, and SQLite ignores the limit.
async fn session_limits_stop_long_statements_on_the_server(t: TestDb) {
    let target = match t.db.backend() {
        Backend::Postgres => keel_config::DatabaseTarget::Postgres { url: keel_config::Secret::new(t.url.clone()) },
        Backend::Sqlite => keel_config::DatabaseTarget::Sqlite { path: t.url.trim_start_matches("sqlite://").into() },
    };
    let limits = SessionLimits { statement_timeout: Some(std::time::Duration::from_millis(300)), ..Default::default() };
    let db = keel_storage::open_limited(&target, true, &[&DEMO], limits).await.unwrap();
    db.ping().await.unwrap();
    match &db {
        Db::Postgres(p) => {
            let shown: String = sqlx::query_scalar("SHOW statement_timeout").fetch_one(p).await.unwrap();
            assert_eq!(shown, "300ms");
            let err = sqlx::query("SELECT pg_sleep(30)").execute(p).await.unwrap_err();
            let code = err.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned());
            assert_eq!(code.as_deref(), Some("57014"), "query_canceled by statement_timeout: {err}");
            // The pool is still usable afterwards.
            db.ping().await.unwrap();
        }
        Db::Sqlite(_) => assert!(DEMO.pending(&db).await.unwrap().is_empty()),
    }
    db.close().await;
}

/// `sslmode=require` opens an encrypted session (managed PostgreSQL services insist on it). The
/// local server has `ssl = on`, as Debian's PostgreSQL does out of the box.
#[tokio::test]
async fn postgres_connects_over_tls_when_the_url_requires_it() {
    let Some(t) = TestDb::postgres("postgres_connects_over_tls_when_the_url_requires_it", crate::SCHEMAS).await else {
        return;
    };
    let Db::Postgres(plain) = &t.db else { unreachable!("a Postgres TestDb") };
    let ssl_on: String = sqlx::query_scalar("SHOW ssl").fetch_one(plain).await.unwrap();
    assert_eq!(
        ssl_on, "on",
        "this test needs a server with ssl = on (Debian's default, with its snakeoil certificate)"
    );
    let sep = if t.url.contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}sslmode=require", t.url);
    let target = keel_config::DatabaseTarget::Postgres { url: keel_config::Secret::new(url) };
    let db = keel_storage::connect(&target, keel_storage::ConnectMode::Eager).await.unwrap();
    let Db::Postgres(p) = &db else { unreachable!() };
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetch_one(p).await.unwrap();
    assert!(encrypted, "the session is encrypted");
    db.close().await;
}
