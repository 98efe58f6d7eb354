//! `keel-ops backup export|verify|restore` on real PostgreSQL databases: a round trip gives
//! identical row counts and checksums, a tampered file fails verification (and blocks a
//! restore), and a non-empty database is refused unless `--force`.

use keel_testkit::TestDb;
use serde_json::Value;
use std::path::Path;

/// Tables beyond Keel's own that exercise the awkward cases: identity and generated columns,
/// `json` with raw newlines, bytea, numeric beyond f64, arrays, a table without a key.
const EXTRA: &str = "
    CREATE TABLE ledger (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        org_id uuid NOT NULL REFERENCES keel_orgs (id),
        amount numeric(30, 10) NOT NULL,
        doubled numeric GENERATED ALWAYS AS (amount * 2) STORED,
        raw json,
        blob bytea,
        tags text[],
        note text
    );
    CREATE TABLE audit_log (at timestamptz NOT NULL, line text);";

const ROWS: &str = r#"
    -- a tree whose children sort before their parents, so key order alone cannot load it
    INSERT INTO keel_orgs (id, name, parent_id) VALUES ('ffffffff-0000-0000-0000-000000000001', 'Root', NULL);
    INSERT INTO keel_orgs (id, name, parent_id) VALUES ('11111111-0000-0000-0000-000000000002', 'Child', 'ffffffff-0000-0000-0000-000000000001');
    INSERT INTO keel_orgs (id, name, parent_id) VALUES ('00000000-0000-0000-0000-000000000003', 'Grandchild "quoted"', '11111111-0000-0000-0000-000000000002');
    INSERT INTO ledger (org_id, amount, raw, blob, tags, note) VALUES
        ('ffffffff-0000-0000-0000-000000000001', 12345678901234567890.0123456789, '{"a":
            1, "a": 2}', '\x00ff10', ARRAY['x', 'y,z'], E'line1\nline2 \u00e9\u4e2d'),
        ('11111111-0000-0000-0000-000000000002', -0.0000000001, NULL, NULL, '{}', NULL);
    INSERT INTO audit_log VALUES ('2026-01-02T03:04:05.678901Z', 'b'), ('2026-01-02T03:04:05.678901Z', 'a'), ('2025-01-01T00:00:00Z', NULL);
    INSERT INTO keel_queue_pauses (queue, paused_at, paused_by) VALUES ('mail', '2026-02-10T15:17:00Z', 'ops');"#;

async fn exec(db: &TestDb, sql: &str) {
    sqlx::raw_sql(sql).execute(db.db.pg().unwrap()).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn source(name: &str) -> Option<TestDb> {
    let db = TestDb::postgres(name, crate::SCHEMAS).await?;
    exec(&db, EXTRA).await;
    exec(&db, ROWS).await;
    Some(db)
}

async fn empty_target(name: &str) -> Option<TestDb> {
    let db = TestDb::postgres(name, crate::SCHEMAS).await?;
    exec(&db, EXTRA).await;
    Some(db)
}

fn run(db: &TestDb, args: &[&str]) -> (i32, String, String) {
    super::ops(args, &[("DATABASE_URL", db.url.as_str())])
}

fn export(db: &TestDb, out: &Path) -> Value {
    let (code, stdout, err) = run(db, &["backup", "export", "--out", out.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(!err.contains('\u{1b}'), "no progress drawing when stderr is not a terminal: {err:?}");
    serde_json::from_str::<Value>(&stdout).unwrap()["manifest"].clone()
}

/// (table, rows, sha256) per table, as recorded in a manifest.
fn digest(m: &Value) -> Vec<(String, u64, String)> {
    m["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                format!("{}.{}", t["schema"].as_str().unwrap(), t["table"].as_str().unwrap()),
                t["rows"].as_u64().unwrap(),
                t["sha256"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn export_restore_export_round_trips_to_identical_counts_and_checksums() {
    let Some(src) = source("backup::round_trip_src").await else { return };
    let Some(dst) = empty_target("backup::round_trip_dst").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    let m1 = export(&src, &first);

    let tables: Vec<String> = digest(&m1).into_iter().map(|(t, _, _)| t).collect();
    assert!(!tables.iter().any(|t| t.ends_with("_sqlx_migrations")), "{tables:?}");
    let pos = |n: &str| tables.iter().position(|t| t == n).unwrap();
    assert!(pos("public.keel_orgs") < pos("public.ledger"), "referenced tables first: {tables:?}");
    let rows: u64 = digest(&m1).iter().map(|(_, n, _)| n).sum();
    assert_eq!(rows, 3 + 2 + 3 + 1);
    assert_eq!(m1["schema_versions"]["queue"], crate::latest("queue"), "{m1}");
    assert_eq!(m1["format"], "keel-backup/3");
    let orgs = std::fs::read_to_string(first.join("public.keel_orgs.jsonl")).unwrap();
    assert_eq!(orgs.lines().count(), 3);
    for line in orgs.lines() {
        serde_json::from_str::<Value>(line).unwrap();
    }

    let (code, out, err) = run(&src, &["backup", "verify", first.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("backup OK"), "{out}");

    let (code, out, err) = run(&dst, &["backup", "restore", first.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let restored: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(restored["rows"], rows);

    let second = dir.path().join("second");
    let m2 = export(&dst, &second);
    assert_eq!(digest(&m1), digest(&m2), "same rows, same bytes");

    // Identity sequences continue after the restored ids instead of colliding with them.
    sqlx::raw_sql("INSERT INTO ledger (org_id, amount) VALUES ('ffffffff-0000-0000-0000-000000000001', 1)")
        .execute(dst.db.pg().unwrap())
        .await
        .unwrap();
    let generated: String = sqlx::query_scalar("SELECT doubled::text FROM ledger WHERE id = 1")
        .fetch_one(dst.db.pg().unwrap())
        .await
        .unwrap();
    assert_eq!(generated, "24691357802469135780.0246913578", "generated columns are recomputed exactly");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_file_fails_verification_and_blocks_restore() {
    let Some(src) = source("backup::tamper_src").await else { return };
    let Some(dst) = empty_target("backup::tamper_dst").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b");
    export(&src, &out);
    let victim = out.join("public.ledger.jsonl");
    let text = std::fs::read_to_string(&victim).unwrap();
    std::fs::write(&victim, text.replacen("12345678901234567890", "92345678901234567890", 1)).unwrap();

    let (code, stdout, err) = run(&src, &["backup", "verify", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}{err}");
    assert!(err.contains("public.ledger.jsonl") && err.contains("SHA-256"), "{err}");
    assert!(!err.contains("public.keel_orgs.jsonl"), "only the changed file is named: {err}");
    let (_, stdout, _) = run(&src, &["backup", "verify", out.to_str().unwrap(), "--json"]);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"][0]["file"], "public.ledger.jsonl");

    let (code, _, err) = run(&dst, &["backup", "restore", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not verify") && err.contains("public.ledger.jsonl"), "{err}");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM keel_orgs").fetch_one(dst.db.pg().unwrap()).await.unwrap();
    assert_eq!(n, 0, "nothing restored from a tampered backup");

    // A deleted file and an unexpected one are named too.
    std::fs::remove_file(out.join("public.keel_orgs.jsonl")).unwrap();
    std::fs::write(out.join("public.extra.jsonl"), "{}\n").unwrap();
    let (code, _, err) = run(&src, &["backup", "verify", out.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("public.keel_orgs.jsonl") && err.contains("public.extra.jsonl"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_refuses_a_non_empty_database_unless_forced_and_is_all_or_nothing() {
    let Some(src) = source("backup::non_empty_src").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b");
    let m = export(&src, &out);

    // Restoring into the database it came from: not empty.
    let (code, _, err) = run(&src, &["backup", "restore", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not empty") && err.contains("public.keel_orgs") && err.contains("--force"), "{err}");

    // --force replaces the contents: changed rows come back as they were in the backup.
    exec(&src, "UPDATE keel_orgs SET name = 'Renamed'; DELETE FROM audit_log WHERE line = 'a';").await;
    let (code, out_json, err) = run(&src, &["backup", "restore", out.to_str().unwrap(), "--force", "--json"]);
    assert_eq!(code, 0, "{out_json}{err}");
    let again = dir.path().join("again");
    assert_eq!(digest(&export(&src, &again)), digest(&m));

    // A target without one of the tables is refused before anything is written.
    let Some(missing) = TestDb::postgres("backup::non_empty_missing", crate::SCHEMAS).await else { return };
    exec(&missing, "CREATE TABLE ledger (id bigint PRIMARY KEY)").await;
    let (code, _, err) = run(&missing, &["backup", "restore", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("audit_log"), "names the missing table: {err}");

    // A restore that fails halfway (orgs loaded, then a ledger row is rejected) leaves nothing.
    let Some(partial) = TestDb::postgres("backup::non_empty_partial", crate::SCHEMAS).await else { return };
    exec(
        &partial,
        "CREATE TABLE ledger (id bigint PRIMARY KEY, amount numeric CHECK (amount > 0));
         CREATE TABLE audit_log (at timestamptz, line text);",
    )
    .await;
    let (code, _, err) = run(&partial, &["backup", "restore", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("public.ledger") && err.contains("check constraint"), "{err}");
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM keel_orgs").fetch_one(partial.db.pg().unwrap()).await.unwrap();
    assert_eq!(n, 0, "the orgs loaded before the failure were rolled back");
}

#[tokio::test(flavor = "multi_thread")]
async fn export_of_named_tables_and_bad_arguments() {
    let Some(src) = source("backup::tables").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b");
    let (code, stdout, err) = run(
        &src,
        &["backup", "export", "--out", out.to_str().unwrap(), "--tables", "ledger,public.keel_orgs", "--json"],
    );
    assert_eq!(code, 0, "{stdout}{err}");
    let m = &serde_json::from_str::<Value>(&stdout).unwrap()["manifest"];
    let names: Vec<String> = digest(m).into_iter().map(|(t, _, _)| t).collect();
    assert_eq!(names, ["public.keel_orgs", "public.ledger"]);

    let (code, _, err) = run(&src, &["backup", "export", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 2, "never overwrites: {err}");
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) =
        run(&src, &["backup", "export", "--out", dir.path().join("c").to_str().unwrap(), "--tables", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("\"nope\"") && err.contains("public.keel_orgs"), "lists what exists: {err}");
    assert!(!dir.path().join("c").exists(), "nothing left behind");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no partial directories: {leftovers:?}");
}

/// SQLite deployments get the same format: a tree loaded children-first, text that looks like
/// JSON, integers beyond 2^53, a float that needs all 17 digits, and a table without a key.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_round_trip_and_refusals() {
    let src = TestDb::sqlite(crate::SCHEMAS).await;
    let dst = TestDb::sqlite(crate::SCHEMAS).await;
    let extra = "CREATE TABLE samples (at INTEGER NOT NULL, v REAL, payload TEXT, big INTEGER, tenant TEXT REFERENCES keel_orgs (id));";
    let rows = r#"
        INSERT INTO keel_orgs (id, name, parent_id, created_at) VALUES
            ('ffffffff-0000-0000-0000-000000000001', 'Root', NULL, 1770000000000),
            ('11111111-0000-0000-0000-000000000002', 'Child', 'ffffffff-0000-0000-0000-000000000001', 1770000000001),
            ('00000000-0000-0000-0000-000000000003', 'Grand''child', '11111111-0000-0000-0000-000000000002', 1770000000002);
        INSERT INTO samples VALUES
            (2, 0.30000000000000004, '{"a": [1, 2]}', 9007199254740993, 'ffffffff-0000-0000-0000-000000000001'),
            (1, -1.5e-300, 'line1
line2 é', -9223372036854775808, NULL),
            (1, NULL, NULL, NULL, NULL);"#;
    for db in [&src, &dst] {
        sqlx::raw_sql(extra).execute(db.db.sqlite().unwrap()).await.unwrap();
    }
    sqlx::raw_sql(rows).execute(src.db.sqlite().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    let m1 = export(&src, &first);
    assert_eq!(m1["backend"], "sqlite");
    let d1 = digest(&m1);
    let pos = |n: &str| d1.iter().position(|(t, _, _)| t == n).unwrap();
    assert!(pos("main.keel_orgs") < pos("main.samples"), "{d1:?}");
    assert!(!d1.iter().any(|(t, _, _)| t.contains("_sqlx_migrations")));

    let (code, out, err) = run(&dst, &["backup", "restore", first.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let second = dir.path().join("second");
    assert_eq!(digest(&export(&dst, &second)), d1);
    let (v, big, payload): (f64, i64, String) = sqlx::query_as("SELECT v, big, payload FROM samples WHERE at = 2")
        .fetch_one(dst.db.sqlite().unwrap())
        .await
        .unwrap();
    assert_eq!(v.to_bits(), 0.30000000000000004f64.to_bits(), "floats keep every digit");
    assert_eq!(big, 9007199254740993);
    assert_eq!(payload, r#"{"a": [1, 2]}"#, "JSON-looking text stays text");

    let (code, _, err) = run(&dst, &["backup", "restore", first.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("not empty") && err.contains("--force"), "{err}");
    sqlx::raw_sql("DELETE FROM samples WHERE v IS NULL").execute(dst.db.sqlite().unwrap()).await.unwrap();
    let (code, _, err) = run(&dst, &["backup", "restore", first.to_str().unwrap(), "--force"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(digest(&export(&dst, &dir.path().join("third"))), d1);

    // A backup in the previous format (no column types) still restores into its own backend.
    let mut old: Value = serde_json::from_str(&std::fs::read_to_string(first.join("manifest.json")).unwrap()).unwrap();
    old["format"] = "keel-backup/2".into();
    for t in old["tables"].as_array_mut().unwrap() {
        t.as_object_mut().unwrap().remove("columns");
    }
    std::fs::write(first.join("manifest.json"), old.to_string()).unwrap();
    let empty = TestDb::sqlite(crate::SCHEMAS).await;
    sqlx::raw_sql(extra).execute(empty.db.sqlite().unwrap()).await.unwrap();
    let (code, _, err) = run(&empty, &["backup", "restore", first.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(digest(&export(&empty, &dir.path().join("fourth"))), d1);
}
