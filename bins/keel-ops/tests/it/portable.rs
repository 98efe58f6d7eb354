//! Moving a deployment between backends with the real keel-ops binary: an SQLite backup restores
//! into PostgreSQL and a PostgreSQL backup into SQLite, every Keel table holding rows of every
//! type (times, UUIDs, amounts at their bound, JSON, booleans, NULLs, a sealed job). Each trip
//! goes there and back and must come back equal; the database restored into passes its
//! migrations' checks and the app reads it (health, queue stats, an invoice, the sealed job run
//! by a worker holding the same key). Schema versions that differ and a failure halfway are
//! refused with the target left as it was.

use keel_queue::worker::Tick;
use keel_queue::{JobArgs, JobContext, JobKey, Keyring, KindOptions, NewJob, Registry, Store, StoreOptions, Worker};
use keel_testkit::TestDb;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The address inside the sealed job: it must never appear in clear in a backup.
const SEALED_TO: &str = "sealed.person@example.com";

/// One row in every Keel table (two where NULL and not-NULL both matter), written per backend in
/// its own conventions: `{T:ms}` is a time, `{B:0|1}` a boolean, `{OVERRIDE}` PostgreSQL's
/// identity override. Amounts sit at keel-billing's bound, GCRA times beyond 2^53, a float needs
/// all 17 digits, text carries quotes, newlines and non-ASCII.
const SEED: &str = r#"
INSERT INTO keel_orgs (id, name, parent_id, created_at) VALUES
    ('ffffffff-0000-4000-8000-000000000001', 'Root "Ω" Org', NULL, {T:1767323045678}),
    ('11111111-0000-4000-8000-000000000002', 'Child, franchise', 'ffffffff-0000-4000-8000-000000000001', {T:1767323045679});
INSERT INTO keel_users (id, email, password_hash, created_at) VALUES
    ('22222222-0000-4000-8000-000000000001', 'jane@example.com', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA', {T:1767323045680}),
    ('22222222-0000-4000-8000-000000000002', 'zoë@example.com', NULL, {T:1767323045681});
INSERT INTO keel_memberships (user_id, org_id, role, created_at) VALUES
    ('22222222-0000-4000-8000-000000000001', 'ffffffff-0000-4000-8000-000000000001', 'owner', {T:1767323045682}),
    ('22222222-0000-4000-8000-000000000002', '11111111-0000-4000-8000-000000000002', 'viewer', {T:1767323045683});
INSERT INTO keel_sessions (id_hash, user_id, active_org_id, created_at, expires_at) VALUES
    ('5e55100000000000000000000000000000000000000000000000000000000001', '22222222-0000-4000-8000-000000000001', 'ffffffff-0000-4000-8000-000000000001', {T:1767323045684}, {T:1999999999999}),
    ('5e55100000000000000000000000000000000000000000000000000000000002', '22222222-0000-4000-8000-000000000002', NULL, {T:1767323045685}, {T:1767409445685});
INSERT INTO keel_api_tokens (id, user_id, secret_hash, created_at, revoked_at, scope) VALUES
    ('33333333-0000-4000-8000-000000000001', '22222222-0000-4000-8000-000000000001', 'a0a0', {T:1767323045686}, NULL, 'operator'),
    ('33333333-0000-4000-8000-000000000002', '22222222-0000-4000-8000-000000000001', 'b1b1', {T:1767323045687}, {T:1767323045999}, 'org');
INSERT INTO keel_operators (user_id, granted_at, granted_by) VALUES
    ('22222222-0000-4000-8000-000000000001', {T:1767323045707}, NULL),
    ('22222222-0000-4000-8000-000000000002', {T:1767323045708}, '22222222-0000-4000-8000-000000000001');
INSERT INTO keel_operator_actions (id, operator_id, action, target, detail, at, remote_addr) VALUES
    ('0193a0b0-0000-7000-8000-000000000001', '22222222-0000-4000-8000-000000000001', 'queue.pause', 'queue:mail', '{"by":"console","n":[1,2]}', {T:1767323045709}, '127.0.0.1'),
    ('0193a0b0-0000-7000-8000-000000000002', '22222222-0000-4000-8000-000000000001', 'operator.grant', 'user:22222222', '{}', {T:1767323045710}, NULL);
INSERT INTO keel_password_resets (token_hash, user_id, expires_at, used_at, created_at) VALUES
    ('c2c2', '22222222-0000-4000-8000-000000000002', {T:1767326645688}, NULL, {T:1767323045688}),
    ('d3d3', '22222222-0000-4000-8000-000000000001', {T:1767326645689}, {T:1767323046000}, {T:1767323045689});
INSERT INTO keel_invoices (id, org_id, number, status, customer_name, currency, total_minor, line_items, created_at) VALUES
    ('44444444-0000-4000-8000-000000000001', 'ffffffff-0000-4000-8000-000000000001', 'INV-20260102-0001', 'open', 'Zoë "Ω" Ltd', 'EUR', 999999999999999,
     '[{"description":"Widget, 中文\nsecond line","quantity":3,"unit_amount_minor":333333333333333}]', {T:1767323045690}),
    ('44444444-0000-4000-8000-000000000002', '11111111-0000-4000-8000-000000000002', 'INV-20260102-0001', 'draft', 'O''Brien', 'JPY', 0,
     '[{"description":"Free","quantity":1,"unit_amount_minor":0,"meta":{"tags":["a",null,true],"ratio":0.5}}]', {T:1767323045691});
INSERT INTO keel_invoice_counters (org_id, day, last_value) VALUES
    ('ffffffff-0000-4000-8000-000000000001', '20260102', 1), ('11111111-0000-4000-8000-000000000002', '20260102', 1);
INSERT INTO keel_idempotency_keys (org_id, key, request_hash, status, response, created_at) VALUES
    ('ffffffff-0000-4000-8000-000000000001', 'create-1', 'e4e4', 201, '{"id":"44444444-0000-4000-8000-000000000001"}', {T:1767323045692});
INSERT INTO keel_payments (id, org_id, invoice_id, amount_minor, currency, paid_at) VALUES
    ('55555555-0000-4000-8000-000000000001', 'ffffffff-0000-4000-8000-000000000001', '44444444-0000-4000-8000-000000000001', 999999999999999, 'EUR', {T:1767323045693});
INSERT INTO keel_jobs (id, kind, queue, org_id, payload, priority, state, run_at, attempt, max_attempts, dedupe_key,
                       lease_seq, lease_expires_at, locked_by, last_error, created_at, updated_at, started_at, finished_at, sealed) VALUES
    ('66666666-0000-4000-8000-000000000001', 'demo.sleep', 'bulk', NULL, '{"ms":5,"note":"line1\nline2 é"}', -5, 'pending',
     {T:1767323045694}, 0, 3, 'dedupe-1', 0, NULL, NULL, NULL, {T:1767323045694}, {T:1767323045694}, NULL, NULL, {B:0}),
    ('66666666-0000-4000-8000-000000000002', 'demo.fail', 'bulk', 'ffffffff-0000-4000-8000-000000000001', '{"permanent":true}', 32767, 'dead_letter',
     {T:1767323045695}, 3, 3, NULL, 3, NULL, NULL, 'permanent failure: "quoted"', {T:1767323045695}, {T:1767323045795}, {T:1767323045700}, {T:1767323045795}, {B:0}),
    ('66666666-0000-4000-8000-000000000003', 'demo.sleep', 'bulk', NULL, '{}', -32768, 'processing',
     {T:1767323045696}, 1, 1000, NULL, 9007199254740993, {T:1999999999999}, 'worker-a', NULL, {T:1767323045696}, {T:1767323045696}, {T:1767323045697}, NULL, {B:0});
INSERT INTO keel_jobs_completed (id, kind, queue, org_id, payload, priority, state, run_at, attempt, max_attempts, dedupe_key,
                       lease_seq, lease_expires_at, locked_by, last_error, created_at, updated_at, started_at, finished_at, sealed, trace_context) VALUES
    ('66666666-0000-4000-8000-000000000004', 'demo.sleep', 'default', 'ffffffff-0000-4000-8000-000000000001', '{"ms":1}', 0, 'completed',
     {T:1767323045690}, 1, 5, NULL, 1767323045690001, NULL, 'worker-a', NULL, {T:1767323045690}, {T:1767323045691}, {T:1767323045690}, {T:1767323045691}, {B:0},
     '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
INSERT INTO keel_queue_pauses (queue, paused_at, paused_by) VALUES ('mail', {T:1767323045698}, 'ops'), ('reports', {T:1767323045699}, NULL);
INSERT INTO keel_cron_schedule (task, next_run_at, updated_at) VALUES ('retention', {T:1767326645000}, {T:1767323045000});
INSERT INTO keel_cron_runs (id, task, state, outcome, worker, started_at, heartbeat_at, lease_expires_at, finished_at, items, skipped_ticks, error) VALUES
    ('77777777-0000-4000-8000-000000000001', 'retention', 'finished', 'failed', 'worker-a', {T:1767323045000}, {T:1767323045100}, {T:1767323075000}, {T:1767323045200}, 9007199254740993, 2, 'disk full'),
    ('77777777-0000-4000-8000-000000000002', 'retention', 'running', NULL, 'worker-b', {T:1767326645000}, {T:1767326645100}, {T:1999999999999}, NULL, 0, 0, NULL);
INSERT INTO keel_cron_pauses (task, paused_at, paused_by) VALUES ('retention', {T:1767323045701}, 'ops');
INSERT INTO keel_rate_limits (policy, key, tat_ns, decided_ns, allowed) VALUES
    ('sign_in_failures', 'j***@example.com', 1767323045678123457, 1767323045678000001, {B:1}),
    ('api', 'token:33333333', 9223372036854775807, -9223372036854775808, {B:0});
INSERT INTO route_performance_events (id, route, kind, method, status, duration_us, sample_rate, weight, occurred_at, received_at) {OVERRIDE} VALUES
    (1, '/api/invoices/:id', 'server', 'GET', 200, 1234, 1, 1000000, {T:1767323045702}, {T:1767323045703}),
    (2, '/dashboard', 'navigation', NULL, NULL, 600000000, 0.30000000000000004, 3333333, {T:1767323045704}, {T:1767323045705});
INSERT INTO keel_telemetry_route_days (day, route) VALUES (20455, '/dashboard');
INSERT INTO keel_campaign_batches (job_id, campaign, recipients, sent, failed, finished_at) VALUES
    ('66666666-0000-4000-8000-000000000002', 'spring «sale»', 10, 9, 1, {T:1767323045706});
"#;

/// [`SEED`] in one backend's conventions.
fn seed_sql(pg: bool) -> String {
    let mut out = String::new();
    let mut rest = SEED;
    while let Some(i) = rest.find('{') {
        let Some(len) = rest[i..].find('}').filter(|_| {
            rest[i..].starts_with("{T:") || rest[i..].starts_with("{B:") || rest[i..].starts_with("{OVERRIDE}")
        }) else {
            out.push_str(&rest[..=i]);
            rest = &rest[i + 1..];
            continue;
        };
        out.push_str(&rest[..i]);
        let token = &rest[i + 1..i + len];
        out.push_str(&match token.split_once(':') {
            Some(("T", ms)) if pg => {
                let t = chrono::DateTime::from_timestamp_millis(ms.parse().unwrap()).unwrap();
                format!("'{}'", t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            }
            Some(("T", ms)) => ms.to_owned(),
            Some(("B", b)) if pg => (b == "1").to_string(),
            Some(("B", b)) => b.to_owned(),
            _ if pg => "OVERRIDING SYSTEM VALUE".to_owned(),
            _ => String::new(),
        });
        rest = &rest[i + len + 1..];
    }
    out.push_str(rest);
    out
}

#[derive(Serialize, Deserialize)]
struct Mail {
    to: String,
    subject: String,
}

impl JobArgs for Mail {
    const KIND: &'static str = "portable.mail";
    fn options() -> KindOptions {
        KindOptions::default().sealed_fields(&["to"])
    }
}

fn keyring() -> Arc<Keyring> {
    Arc::new(Keyring::new(JobKey::parse(keel_testkit::TEST_JOB_ENCRYPTION_KEY).unwrap(), []).unwrap())
}

fn sealing_store(db: &TestDb) -> Arc<dyn Store> {
    let opts = StoreOptions { keyring: Some(keyring()), ..StoreOptions::default() };
    keel_queue::open_with(db.db.clone(), Arc::new(keel_queue::SystemClock), opts)
}

/// Every table with rows of every type, and a job whose address is sealed under the test key.
async fn seed(db: &TestDb) {
    let sql = seed_sql(db.db.pg().is_some());
    match &db.db {
        keel_storage::Db::Postgres(p) => sqlx::raw_sql(&sql).execute(p).await.map(drop),
        keel_storage::Db::Sqlite(p) => sqlx::raw_sql(&sql).execute(p).await.map(drop),
    }
    .unwrap_or_else(|e| panic!("seeding: {e}"));
    let mail = Mail { to: SEALED_TO.into(), subject: "Welcome".into() };
    sealing_store(db).enqueue(NewJob::args(&mail).unwrap()).await.unwrap();
}

fn run(db: &TestDb, args: &[&str]) -> (i32, String, String) {
    super::ops(args, &[("DATABASE_URL", db.url.as_str())])
}

fn ok_json(db: &TestDb, args: &[&str]) -> Value {
    let (code, out, err) = run(db, args);
    assert_eq!(code, 0, "keel-ops {args:?}: {out}{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} prints JSON ({e}): {out}"))
}

fn export(db: &TestDb, out: &Path) -> Value {
    ok_json(db, &["backup", "export", "--out", out.to_str().unwrap(), "--json"])["manifest"].clone()
}

fn restore(db: &TestDb, dir: &Path) -> Value {
    ok_json(db, &["backup", "restore", dir.to_str().unwrap(), "--json"])
}

/// Table name (without schema: `main` and `public` name the same table) → its rows as exported,
/// with JSON held in text (SQLite) parsed, so both backends' exports compare by value.
fn rows(dir: &Path, m: &Value) -> BTreeMap<String, Vec<Value>> {
    let parse_text_json = |v: Value| match v {
        Value::String(s) if s.starts_with(['{', '[']) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        other => other,
    };
    m["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let text = std::fs::read_to_string(dir.join(t["file"].as_str().unwrap())).unwrap();
            let rows = text
                .lines()
                .map(|l| match serde_json::from_str::<Value>(l).unwrap() {
                    Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, parse_text_json(v))).collect()),
                    other => other,
                })
                .collect();
            (t["table"].as_str().unwrap().to_owned(), rows)
        })
        .collect()
}

/// Every business table is in the backup and holds rows: a table added later without seed rows
/// fails here rather than going untested.
fn assert_every_table_has_rows(m: &Value) {
    let tables = m["tables"].as_array().unwrap();
    let expected = [
        "keel_orgs",
        "keel_users",
        "keel_memberships",
        "keel_sessions",
        "keel_api_tokens",
        "keel_password_resets",
        "keel_operators",
        "keel_operator_actions",
        "keel_invoices",
        "keel_invoice_counters",
        "keel_idempotency_keys",
        "keel_payments",
        "keel_jobs",
        "keel_jobs_completed",
        "keel_queue_pauses",
        "keel_cron_schedule",
        "keel_cron_runs",
        "keel_cron_pauses",
        "keel_rate_limits",
        "route_performance_events",
        "keel_telemetry_route_days",
        "keel_campaign_batches",
    ];
    assert_eq!(tables.len(), expected.len(), "{m}");
    for t in tables {
        let name = t["table"].as_str().unwrap();
        assert!(expected.contains(&name), "a table the seed does not cover: {name}");
        assert!(t["rows"].as_u64().unwrap() > 0, "{name} is empty in the seed");
        assert!(!t["columns"].as_array().unwrap().is_empty(), "{name} records its column types");
    }
}

/// What the app reports about a database, minus what depends on the backend or the clock.
fn app_view(db: &TestDb) -> (Value, Value) {
    let mut stats = ok_json(db, &["queue", "stats", "--json"]);
    stats.as_object_mut().unwrap().remove("oldest_pending_age_s");
    // Nothing listens on port 1: the HTTP half fails, the database half is what is compared.
    let (_, out, err) = run(db, &["health", "--deep", "--json", "--url", "http://127.0.0.1:1"]);
    let health: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}{err}"));
    let mut deep = health["database"].as_object().unwrap().clone();
    deep.retain(|k, _| k == "migrations" || k.starts_with("rows.") || k.starts_with("latest_"));
    (stats, Value::Object(deep))
}

/// A restored database passes its migrations' checks: every component already at its newest
/// version with the recorded checksums, nothing to apply.
fn assert_migrations_current(db: &TestDb) {
    let v = ok_json(db, &["migrate", "--json"]);
    for c in v["components"].as_array().unwrap() {
        assert_eq!(c["applied"].as_array().map(Vec::len), Some(0), "nothing to apply after a restore: {v}");
    }
}

/// The sealed job runs on the restored database in a worker holding the same key, and the
/// handler receives the address it was enqueued with.
async fn assert_sealed_job_opens(db: &TestDb) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut reg = Registry::new();
    let s = seen.clone();
    reg.register(move |m: Mail, _ctx: JobContext| {
        let s = s.clone();
        async move {
            s.lock().unwrap().push(m.to);
            Ok(())
        }
    })
    .unwrap();
    let settings = keel_queue::WorkerSettings {
        worker_id: "portable-test".into(),
        queues: vec![keel_queue::QueueSettings::new("default", "background_job", 1, 10)],
        ..keel_queue::WorkerSettings::default()
    };
    let w = Worker::new(sealing_store(db), reg, settings);
    let tick = w.tick("default").await.unwrap();
    assert!(matches!(tick, Tick::Ran { .. }), "{tick:?}");
    assert_eq!(*seen.lock().unwrap(), [SEALED_TO], "the same key opens the restored sealed value");
}

/// The invoice at keel-billing's bound, read through the app's own store.
async fn assert_invoice_reads(db: &TestDb) {
    let org = keel_ids::OrgId::parse("ffffffff-0000-4000-8000-000000000001").unwrap();
    let inv = keel_billing::open(db.db.clone())
        .get(org, uuid::uuid!("44444444-0000-4000-8000-000000000001"))
        .await
        .unwrap()
        .expect("the invoice is there");
    assert_eq!(inv.total_minor, 999_999_999_999_999);
    assert_eq!(inv.customer_name, "Zoë \"Ω\" Ltd");
    assert_eq!(inv.created_at.timestamp_millis(), 1_767_323_045_690);
    assert_eq!(inv.line_items[0].description, "Widget, 中文\nsecond line");
}

fn assert_sealed_in_backup(dir: &Path) {
    let jobs = std::fs::read_to_string(
        dir.join(
            std::fs::read_dir(dir)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .find(|f| f.ends_with(".keel_jobs.jsonl"))
                .unwrap(),
        ),
    )
    .unwrap();
    assert!(jobs.contains("$sealed") && jobs.contains("Welcome"), "kept sealed: {jobs}");
    assert!(!jobs.contains(SEALED_TO), "never in clear: {jobs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_moves_to_postgres_and_back_with_every_table_and_type() {
    let src = TestDb::sqlite(crate::SCHEMAS).await;
    let Some(pg) = TestDb::postgres("portable::sqlite_to_pg", crate::SCHEMAS).await else { return };
    seed(&src).await;
    let dir = tempfile::tempdir().unwrap();
    let lite = dir.path().join("from-sqlite");
    let m1 = export(&src, &lite);
    assert_eq!(m1["backend"], "sqlite");
    assert_eq!(m1["format"], "keel-backup/3");
    assert_every_table_has_rows(&m1);
    assert_sealed_in_backup(&lite);

    // --redact-sealed drops the ciphertext instead of keeping it.
    let redacted = dir.path().join("redacted");
    ok_json(&src, &["backup", "export", "--out", redacted.to_str().unwrap(), "--redact-sealed", "--json"]);
    let jobs = std::fs::read_to_string(redacted.join("main.keel_jobs.jsonl")).unwrap();
    assert!(jobs.contains("[sealed]") && !jobs.contains("$sealed") && jobs.contains("Welcome"), "{jobs}");

    let restored = restore(&pg, &lite);
    assert_eq!(
        restored["rows"],
        m1["tables"].as_array().unwrap().iter().map(|t| t["rows"].as_u64().unwrap()).sum::<u64>()
    );
    assert_migrations_current(&pg);
    assert_eq!(app_view(&pg), app_view(&src), "the app sees the same data on PostgreSQL");
    assert_invoice_reads(&pg).await;

    // The values landed in PostgreSQL's own types, not as text.
    let p = pg.db.pg().unwrap();
    let (org, created, parent): (uuid::Uuid, chrono::DateTime<chrono::Utc>, Option<uuid::Uuid>) =
        sqlx::query_as("SELECT id, created_at, parent_id FROM keel_orgs WHERE name = 'Child, franchise'")
            .fetch_one(p)
            .await
            .unwrap();
    assert_eq!(org, uuid::uuid!("11111111-0000-4000-8000-000000000002"));
    assert_eq!(created.timestamp_millis(), 1_767_323_045_679);
    assert_eq!(parent, Some(uuid::uuid!("ffffffff-0000-4000-8000-000000000001")));
    let (allowed, tat): (bool, i64) =
        sqlx::query_as("SELECT allowed, tat_ns FROM keel_rate_limits WHERE policy = 'sign_in_failures'")
            .fetch_one(p)
            .await
            .unwrap();
    assert!(allowed);
    assert_eq!(tat, 1_767_323_045_678_123_457);
    let meta: Value = sqlx::query_scalar("SELECT line_items->0->'meta' FROM keel_invoices WHERE currency = 'JPY'")
        .fetch_one(p)
        .await
        .unwrap();
    assert_eq!(meta, serde_json::json!({"tags": ["a", null, true], "ratio": 0.5}), "JSON is jsonb, not a string");
    let nulls: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM keel_users WHERE password_hash IS NULL), (SELECT count(*) FROM keel_api_tokens WHERE revoked_at IS NULL)",
    )
    .fetch_one(p)
    .await
    .unwrap();
    assert_eq!(nulls, (1, 1), "NULLs stay NULL");
    // Identity values continue after the restored ids.
    let next: i64 = sqlx::query_scalar(
        "INSERT INTO route_performance_events (route, kind, duration_us, sample_rate, weight, occurred_at)
         VALUES ('/x', 'server', 1, 1, 1000000, now()) RETURNING id",
    )
    .fetch_one(p)
    .await
    .unwrap();
    assert_eq!(next, 3);
    sqlx::query("DELETE FROM route_performance_events WHERE id = 3").execute(p).await.unwrap();

    // And back: the PostgreSQL export restored into a fresh SQLite database equals the original.
    let from_pg = dir.path().join("from-postgres");
    let m2 = export(&pg, &from_pg);
    assert_eq!(m2["backend"], "postgres");
    let back = TestDb::sqlite(crate::SCHEMAS).await;
    restore(&back, &from_pg);
    let m3 = export(&back, &dir.path().join("back-in-sqlite"));
    assert_eq!(rows(&dir.path().join("back-in-sqlite"), &m3), rows(&lite, &m1), "SQLite → PostgreSQL → SQLite");

    assert_sealed_job_opens(&pg).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_moves_to_sqlite_and_back_with_every_table_and_type() {
    let Some(src) = TestDb::postgres("portable::pg_to_sqlite_src", crate::SCHEMAS).await else { return };
    let Some(again) = TestDb::postgres("portable::pg_to_sqlite_again", crate::SCHEMAS).await else { return };
    seed(&src).await;
    let dir = tempfile::tempdir().unwrap();
    let from_pg = dir.path().join("from-postgres");
    let m1 = export(&src, &from_pg);
    assert_eq!(m1["backend"], "postgres");
    assert_every_table_has_rows(&m1);
    assert_sealed_in_backup(&from_pg);

    let lite = TestDb::sqlite(crate::SCHEMAS).await;
    restore(&lite, &from_pg);
    assert_migrations_current(&lite);
    assert_eq!(app_view(&lite), app_view(&src), "the app sees the same data on SQLite");
    assert_invoice_reads(&lite).await;
    let l = lite.db.sqlite().unwrap();
    let (created, allowed, sealed_kinds): (i64, i64, String) = sqlx::query_as(
        "SELECT (SELECT created_at FROM keel_orgs WHERE name = 'Child, franchise'),
                (SELECT allowed FROM keel_rate_limits WHERE policy = 'sign_in_failures'),
                (SELECT group_concat(kind) FROM keel_jobs WHERE sealed = 1)",
    )
    .fetch_one(l)
    .await
    .unwrap();
    assert_eq!((created, allowed, sealed_kinds.as_str()), (1_767_323_045_679, 1, "portable.mail"));
    let line_items: String =
        sqlx::query_scalar("SELECT line_items FROM keel_invoices WHERE currency = 'JPY'").fetch_one(l).await.unwrap();
    let parsed: Value = serde_json::from_str(&line_items).unwrap();
    assert_eq!(parsed[0]["meta"]["tags"], serde_json::json!(["a", null, true]), "JSON text SQLite can read");

    // And back into a fresh PostgreSQL database: the same rows, byte for byte.
    let from_lite = dir.path().join("from-sqlite");
    export(&lite, &from_lite);
    restore(&again, &from_lite);
    let back = dir.path().join("back-in-postgres");
    let m3 = export(&again, &back);
    assert_eq!(rows(&back, &m3), rows(&from_pg, &m1), "PostgreSQL → SQLite → PostgreSQL");
    let sums = |m: &Value| m["tables"].as_array().unwrap().iter().map(|t| t["sha256"].clone()).collect::<Vec<_>>();
    assert_eq!(sums(&m3), sums(&m1), "identical files");

    // A forced restore into SQLite that fails at the payments leaves it as it was.
    let m_lite = export(&lite, &dir.path().join("lite-before"));
    rewrite(&from_pg, "keel_orgs", |t| t.replace("Child, franchise", "Renamed child"));
    rewrite(&from_pg, "keel_payments", |t| t.replace("999999999999999", "0"));
    let (code, _, err) = run(&lite, &["backup", "restore", from_pg.to_str().unwrap(), "--force"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("keel_payments") && err.contains("nothing was restored"), "{err}");
    let after = dir.path().join("lite-after");
    assert_eq!(rows(&after, &export(&lite, &after)), rows(&dir.path().join("lite-before"), &m_lite), "unchanged");

    assert_sealed_job_opens(&lite).await;
}

/// Rewrites one table's file in a backup and its manifest entry so the backup still verifies.
fn rewrite(dir: &Path, table: &str, edit: impl Fn(&str) -> String) {
    use sha2::Digest;
    let mpath = dir.join("manifest.json");
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    for t in m["tables"].as_array_mut().unwrap() {
        if t["table"] == table {
            let path = dir.join(t["file"].as_str().unwrap());
            let original = std::fs::read_to_string(&path).unwrap();
            let text = edit(&original);
            assert_ne!(text, original, "the edit of {table} changed nothing");
            std::fs::write(&path, &text).unwrap();
            t["sha256"] = format!("{:x}", sha2::Sha256::digest(text.as_bytes())).into();
            t["rows"] = text.lines().count().into();
        }
    }
    std::fs::write(&mpath, serde_json::to_string_pretty(&m).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_move_refuses_other_schema_versions_and_fails_whole() {
    let src = TestDb::sqlite(crate::SCHEMAS).await;
    let Some(pg) = TestDb::postgres("portable::refusals", crate::SCHEMAS).await else { return };
    seed(&src).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    let m = export(&src, &good);

    // A component at another version is refused by name before anything is read.
    let newer = dir.path().join("newer");
    std::fs::create_dir(&newer).unwrap();
    for e in std::fs::read_dir(&good).unwrap().flatten() {
        std::fs::copy(e.path(), newer.join(e.file_name())).unwrap();
    }
    let billing = m["schema_versions"]["billing"].as_i64().unwrap();
    let text = std::fs::read_to_string(newer.join("manifest.json")).unwrap();
    let bumped = text.replace(&format!("\"billing\": {billing}"), &format!("\"billing\": {}", billing + 1));
    assert_ne!(text, bumped);
    std::fs::write(newer.join("manifest.json"), bumped).unwrap();
    let (code, _, err) = run(&pg, &["backup", "restore", newer.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    let want =
        format!("component billing: the backup is at version {}, the database at version {billing}", billing + 1);
    assert!(err.contains(&want), "{err}");
    assert!(!err.contains("component queue"), "only the component that differs is named: {err}");

    // Into PostgreSQL, then a forced restore of a backup whose payments break a constraint
    // after orgs, invoices and jobs were loaded: the target keeps exactly what it had.
    restore(&pg, &good);
    let before = dir.path().join("before");
    let m_before = export(&pg, &before);
    let bad = dir.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    for e in std::fs::read_dir(&good).unwrap().flatten() {
        std::fs::copy(e.path(), bad.join(e.file_name())).unwrap();
    }
    rewrite(&bad, "keel_orgs", |t| t.replace("Root \\\"Ω\\\" Org", "Renamed root"));
    rewrite(&bad, "keel_payments", |t| t.replace("999999999999999", "0"));
    let (code, _, err) = run(&pg, &["backup", "verify", bad.to_str().unwrap()]);
    assert_eq!(code, 0, "the rewritten backup verifies: {err}");
    let (code, _, err) = run(&pg, &["backup", "restore", bad.to_str().unwrap(), "--force"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("keel_payments") && err.contains("nothing was restored"), "{err}");
    let after = dir.path().join("after");
    assert_eq!(rows(&after, &export(&pg, &after)), rows(&before, &m_before), "unchanged by the failed restore");

    // A value that does not fit its column is refused naming table, row and column.
    let wrong = dir.path().join("wrong");
    std::fs::create_dir(&wrong).unwrap();
    for e in std::fs::read_dir(&good).unwrap().flatten() {
        std::fs::copy(e.path(), wrong.join(e.file_name())).unwrap();
    }
    rewrite(&wrong, "keel_rate_limits", |t| t.replacen("\"allowed\":1", "\"allowed\":2", 1));
    let empty = TestDb::postgres("portable::refusals_empty", crate::SCHEMAS).await.unwrap();
    let (code, _, err) = run(&empty, &["backup", "restore", wrong.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("keel_rate_limits row") && err.contains("column allowed") && err.contains("0 or 1"), "{err}");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM keel_orgs").fetch_one(empty.db.pg().unwrap()).await.unwrap();
    assert_eq!(n, 0, "nothing restored");
}
