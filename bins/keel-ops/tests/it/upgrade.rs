//! A database made by Keel 0.1 (one migration set, versions 1–8 in `_sqlx_migrations`, tables
//! without the `keel_` prefix) upgrades in place: every row survives, and the result has exactly
//! the tables and indexes of a fresh install.

use keel_storage::{Backend, Db};
use keel_testkit::{backend_tests, TestDb};
use std::collections::BTreeSet;

backend_tests!(schemas: &[]; a_keel_0_1_database_upgrades_in_place_with_every_row);

/// Rows in every 0.1 table, as the 0.1 release wrote them.
const SEED_PG: &str = "
INSERT INTO orgs (id, name) VALUES ('00000000-0000-4000-8000-000000000001', 'Acme');
INSERT INTO orgs (id, name, parent_id) VALUES ('00000000-0000-4000-8000-000000000002', 'Acme East', '00000000-0000-4000-8000-000000000001');
INSERT INTO users (id, email, password_hash) VALUES ('00000000-0000-4000-8000-0000000000a1', 'ann@example.com', 'argon2-hash');
INSERT INTO memberships (user_id, org_id, role) VALUES ('00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-000000000001', 'owner');
INSERT INTO sessions (id_hash, user_id, active_org_id, expires_at) VALUES ('s-hash', '00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-000000000001', now() + interval '1 day');
INSERT INTO api_tokens (id, user_id, secret_hash) VALUES ('00000000-0000-4000-8000-0000000000b1', '00000000-0000-4000-8000-0000000000a1', 't-hash');
INSERT INTO password_resets (token_hash, user_id, expires_at) VALUES ('r-hash', '00000000-0000-4000-8000-0000000000a1', now() + interval '1 hour');
INSERT INTO invoices (id, org_id, number, status, customer_name, currency, total_minor, line_items)
  VALUES ('00000000-0000-4000-8000-0000000000c1', '00000000-0000-4000-8000-000000000001', 'INV-20261201-0001', 'open', 'Bob', 'EUR', 12345, '[]');
INSERT INTO invoice_counters (org_id, day, last_value) VALUES ('00000000-0000-4000-8000-000000000001', '20261201', 1);
INSERT INTO idempotency_keys (org_id, key, request_hash, status, response) VALUES ('00000000-0000-4000-8000-000000000001', 'k1', 'h', 201, '{}');
INSERT INTO payments (id, org_id, invoice_id, amount_minor, currency) VALUES ('00000000-0000-4000-8000-0000000000d1', '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-0000000000c1', 100, 'EUR');
INSERT INTO campaign_batches (job_id, campaign, recipients, sent, failed) VALUES ('00000000-0000-4000-8000-0000000000e1', 'spring', 3, 2, 1);
INSERT INTO keel_rate_limits (policy, key, tat_ns, decided_ns, allowed) VALUES ('p', 'k', 1, 1, true);
INSERT INTO route_performance_events (route, kind, duration_us, sample_rate, weight, occurred_at) VALUES ('/x', 'server', 10, 1, 1000000, now());
INSERT INTO keel_jobs (id, kind, queue, payload, state, run_at, max_attempts, created_at, updated_at)
  VALUES ('00000000-0000-4000-8000-0000000000f1', 'demo.noop', 'default', '{}', 'pending', now(), 5, now(), now());
";

const SEED_SQLITE: &str = "
INSERT INTO orgs (id, name) VALUES ('00000000-0000-4000-8000-000000000001', 'Acme');
INSERT INTO orgs (id, name, parent_id) VALUES ('00000000-0000-4000-8000-000000000002', 'Acme East', '00000000-0000-4000-8000-000000000001');
INSERT INTO users (id, email, password_hash) VALUES ('00000000-0000-4000-8000-0000000000a1', 'ann@example.com', 'argon2-hash');
INSERT INTO memberships (user_id, org_id, role) VALUES ('00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-000000000001', 'owner');
INSERT INTO sessions (id_hash, user_id, active_org_id, expires_at) VALUES ('s-hash', '00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-000000000001', 99999999999999);
INSERT INTO api_tokens (id, user_id, secret_hash) VALUES ('00000000-0000-4000-8000-0000000000b1', '00000000-0000-4000-8000-0000000000a1', 't-hash');
INSERT INTO password_resets (token_hash, user_id, expires_at) VALUES ('r-hash', '00000000-0000-4000-8000-0000000000a1', 99999999999999);
INSERT INTO invoices (id, org_id, number, status, customer_name, currency, total_minor, line_items)
  VALUES ('00000000-0000-4000-8000-0000000000c1', '00000000-0000-4000-8000-000000000001', 'INV-20261201-0001', 'open', 'Bob', 'EUR', 12345, '[]');
INSERT INTO invoice_counters (org_id, day, last_value) VALUES ('00000000-0000-4000-8000-000000000001', '20261201', 1);
INSERT INTO idempotency_keys (org_id, key, request_hash, status, response) VALUES ('00000000-0000-4000-8000-000000000001', 'k1', 'h', 201, '{}');
INSERT INTO payments (id, org_id, invoice_id, amount_minor, currency) VALUES ('00000000-0000-4000-8000-0000000000d1', '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-0000000000c1', 100, 'EUR');
INSERT INTO campaign_batches (job_id, campaign, recipients, sent, failed) VALUES ('00000000-0000-4000-8000-0000000000e1', 'spring', 3, 2, 1);
INSERT INTO keel_rate_limits (policy, key, tat_ns, decided_ns, allowed) VALUES ('p', 'k', 1, 1, 1);
INSERT INTO route_performance_events (route, kind, duration_us, sample_rate, weight, occurred_at) VALUES ('/x', 'server', 10, 1, 1000000, 1);
INSERT INTO keel_jobs (id, kind, queue, payload, state, run_at, max_attempts, created_at, updated_at)
  VALUES ('00000000-0000-4000-8000-0000000000f1', 'demo.noop', 'default', '{}', 'pending', 1, 5, 1, 1);
";

/// Every table with the row count the seed gives it, under its post-upgrade name.
const EXPECTED: &[(&str, i64)] = &[
    ("keel_orgs", 2),
    ("keel_users", 1),
    ("keel_memberships", 1),
    ("keel_sessions", 1),
    ("keel_api_tokens", 1),
    ("keel_password_resets", 1),
    ("keel_invoices", 1),
    ("keel_invoice_counters", 1),
    ("keel_idempotency_keys", 1),
    ("keel_payments", 1),
    ("keel_campaign_batches", 1),
    ("keel_rate_limits", 1),
    ("route_performance_events", 1),
    ("keel_jobs", 1),
];

async fn scalar(db: &Db, q: &str) -> i64 {
    match db {
        Db::Sqlite(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
    }
}

/// Names of every table and index (what a host's own names could collide with).
async fn names(db: &Db) -> BTreeSet<String> {
    let q = match db.backend() {
        Backend::Sqlite => "SELECT type || ' ' || name FROM sqlite_master WHERE type IN ('table', 'index')",
        Backend::Postgres => {
            "SELECT CASE relkind WHEN 'i' THEN 'index ' ELSE 'table ' END || relname FROM pg_class \
             WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'i')"
        }
    };
    let v: Vec<String> = match db {
        Db::Sqlite(p) => sqlx::query_scalar(q).fetch_all(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_scalar(q).fetch_all(p).await.unwrap(),
    };
    v.into_iter().collect()
}

async fn a_keel_0_1_database_upgrades_in_place_with_every_row(t: TestDb) {
    let backend = t.db.backend().as_str();
    let fixture = format!("{}/tests/fixtures/keel-0.1-migrations/{backend}", env!("CARGO_MANIFEST_DIR"));
    let old = sqlx::migrate::Migrator::new(std::path::Path::new(&fixture)).await.unwrap();
    let seed = match &t.db {
        Db::Sqlite(p) => {
            old.run(p).await.unwrap();
            sqlx::raw_sql(SEED_SQLITE).execute(p).await.map(drop)
        }
        Db::Postgres(p) => {
            old.run(p).await.unwrap();
            sqlx::raw_sql(SEED_PG).execute(p).await.map(drop)
        }
    };
    seed.unwrap();

    let env = [("DATABASE_URL", t.url.as_str())];
    let (code, out, err) = crate::ops_async(&["migrate", "--dry-run", "--json"], &env).await;
    assert_eq!(code, 0, "{err}");
    let dry: serde_json::Value = serde_json::from_str(&out).unwrap();
    for c in dry["components"].as_array().unwrap() {
        // Pending: only the migrations newer than 0.1 (after the adopted baseline, version 1).
        let pending = c["pending"].as_array().unwrap().len() as i64;
        assert_eq!(pending, crate::latest(c["component"].as_str().unwrap()) - 1, "{c}");
    }

    let (code, out, err) = crate::ops_async(&["migrate", "--json"], &env).await;
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for c in v["components"].as_array().unwrap() {
        assert_eq!(c["adopted_legacy"], true, "{c}");
        assert_eq!(c["current"], crate::latest(c["component"].as_str().unwrap()), "{c}");
    }
    for (table, rows) in EXPECTED {
        assert_eq!(scalar(&t.db, &format!("SELECT count(*) FROM {table}")).await, *rows, "{table}");
    }
    assert_eq!(scalar(&t.db, "SELECT CAST(sum(total_minor) AS BIGINT) FROM keel_invoices").await, 12345);
    // Foreign keys follow the renames: a new membership must name an existing keel_users row.
    let bad = "INSERT INTO keel_memberships (user_id, org_id, role) VALUES \
               ('00000000-0000-4000-8000-0000000000ff', '00000000-0000-4000-8000-000000000001', 'viewer')";
    let refused = match &t.db {
        Db::Sqlite(p) => sqlx::query(bad).execute(p).await.is_err(),
        Db::Postgres(p) => sqlx::query(bad).execute(p).await.is_err(),
    };
    assert!(refused, "the foreign key to keel_users still holds");

    // Exactly the names a fresh install has: nothing left under a 0.1 name for a host to hit.
    let fresh = match t.db.backend() {
        Backend::Sqlite => TestDb::sqlite(keel_ops::SCHEMAS).await,
        Backend::Postgres => TestDb::postgres("upgrade::fresh", keel_ops::SCHEMAS).await.unwrap(),
    };
    assert_eq!(names(&t.db).await, names(&fresh.db).await);

    let (code, out, _) = crate::ops_async(&["migrate", "--json"], &env).await;
    assert_eq!(code, 0);
    let again: serde_json::Value = serde_json::from_str(&out).unwrap();
    for c in again["components"].as_array().unwrap() {
        assert_eq!(c["adopted_legacy"], false, "{c}");
        assert!(c["applied"].as_array().unwrap().is_empty(), "{c}");
    }
}
