//! Black-box tests of the keel-ops binary.

/// The components every test database of this binary has installed.
const SCHEMAS: &[&keel_storage::Schema] = keel_ops::SCHEMAS;

mod audit;
mod backup;
mod logs;
mod operators;
mod portable;
mod remote;
mod remote_contract;
mod secrets;
mod slo;
mod smoke;
mod upgrade;
mod users;

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_keel-ops");

/// A component's newest migration version (what a fresh install or an upgrade reaches).
pub(crate) fn latest(component: &str) -> i64 {
    let schema = keel_ops::SCHEMAS.iter().find(|s| s.component == component).expect("a known component");
    schema.migrations.iter().map(|m| m.version).max().unwrap_or(0)
}

fn ops(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("KEEL_ENV")
        .env_remove("INTERNAL_API_SECRET")
        // Enqueueing a sealed kind by hand would otherwise create ./data/job-encryption.key here.
        .env("KEEL_JOB_ENCRYPTION_KEY", keel_testkit::TEST_JOB_ENCRYPTION_KEY);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`ops`] with `stdin` written to the command's standard input, for async tests (a real pipe,
/// closed after writing, as `printf … | keel-ops …` gives).
async fn ops_stdin(args: &[&str], env: &[(&str, &str)], stdin: &str) -> (i32, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut c = tokio::process::Command::new(BIN);
    c.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("KEEL_ENV")
        .env_remove("INTERNAL_API_SECRET")
        // Enqueueing a sealed kind by hand would otherwise create ./data/job-encryption.key here.
        .env("KEEL_JOB_ENCRYPTION_KEY", keel_testkit::TEST_JOB_ENCRYPTION_KEY);
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.as_bytes()).await.unwrap();
    drop(pipe);
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`ops`] for async tests (`backend_tests!` bodies), with nothing on standard input.
async fn ops_async(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    ops_stdin(args, env, "").await
}

#[test]
fn help_documents_exit_codes() {
    let (code, out, _) = ops(&["--help"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("Exit status:") && out.contains("migrate") && out.contains("config"), "{out}");
}

#[test]
fn config_check_reports_every_problem() {
    let (code, out, err) = ops(
        &["config", "check"],
        &[
            ("KEEL_BIND", "x"),
            ("KEEL_ENV", "production"),
            ("DATABASE_URL", "redis://:topsecret@h/0"),
            ("KEEL_JOB_ENCRYPTION_KEY", ""),
        ],
    );
    assert_eq!(code, 2, "{out}{err}");
    for var in ["KEEL_BIND", "DATABASE_URL", "INTERNAL_API_SECRET", "KEEL_JOB_ENCRYPTION_KEY"] {
        assert!(err.contains(var), "{var}: {err}");
    }
    assert!(!err.contains("topsecret"));
    let (code, out, _) = ops(&["config", "check", "--json"], &[]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["backend"], "sqlite");
}

#[test]
fn migrate_dry_run_then_apply_then_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/keel.db", dir.path().display());
    let env = [("DATABASE_URL", url.as_str())];
    let (code, out, err) = ops(&["migrate", "--dry-run", "--json"], &env);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let components = v["components"].as_array().unwrap();
    assert_eq!(components.len(), keel_ops::SCHEMAS.len(), "{v}");
    assert!(components.iter().all(|c| c["current"] == 0 && !c["pending"].as_array().unwrap().is_empty()), "{v}");
    let (code, out, _) = ops(&["migrate", "--json"], &env);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for c in v["components"].as_array().unwrap() {
        let latest = latest(c["component"].as_str().unwrap());
        assert_eq!(c["current"], latest, "{c}");
        assert_eq!(c["applied"].as_array().unwrap().len() as i64, latest, "{c}");
    }
    let (code, out, _) = ops(&["migrate"], &env);
    assert_eq!(code, 0);
    for schema in keel_ops::SCHEMAS {
        let line = format!("{:<10} version {}", schema.component, latest(schema.component));
        assert!(out.lines().any(|l| l.trim_end() == line), "{line:?} in {out}");
    }
    assert!(!out.contains("applied"), "{out}");
}

#[test]
fn unreachable_database_is_one_line_and_exit_3() {
    let (code, _, err) = ops(&["migrate"], &[("DATABASE_URL", "postgres://u:pw-hidden@127.0.0.1:1/x")]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("cannot reach the database"), "{err}");
    assert!(!err.contains("pw-hidden"));
    assert!(!err.contains("panicked"));
}

#[test]
fn completions_are_generated() {
    let (code, out, _) = ops(&["completions", "bash"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("keel-ops"));
}

#[test]
fn org_user_and_token_commands_create_what_they_print() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/keel.db", dir.path().display());
    let env = [("DATABASE_URL", url.as_str())];
    assert_eq!(ops(&["migrate"], &env).0, 0);
    let (code, out, err) = ops(&["org", "create", "HQ", "--json"], &env);
    assert_eq!(code, 0, "{err}");
    let org: serde_json::Value = serde_json::from_str(&out).unwrap();
    let org_id = org["id"].as_str().unwrap().to_owned();
    let (code, out, _) = ops(&["org", "create", "Branch", "--parent", &org_id, "--json"], &env);
    assert_eq!(code, 0);
    let child: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(child["parent_id"], org_id);
    assert_eq!(ops(&["org", "create", "X", "--parent", "nope"], &env).0, 2);
    let (code, out, err) =
        ops(&["user", "create", "--email", "Ann@Example.com", "--org", &org_id, "--role", "owner", "--json"], &env);
    assert_eq!(code, 0, "{err}");
    let user: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(user["email"], "ann@example.com");
    let (code, _, err) =
        ops(&["user", "create", "--email", "b@example.com", "--org", &org_id, "--role", "admin"], &env);
    assert_eq!(code, 2);
    assert!(err.contains("--role"), "{err}");
    let (code, out, _) = ops(&["token", "issue", "--user", "ann@example.com", "--json"], &env);
    assert_eq!(code, 0);
    let tok: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(tok["token"].as_str().unwrap().starts_with("keel_"));
    let id = tok["id"].as_str().unwrap();
    let (code, out, _) = ops(&["token", "revoke", id, "--json"], &env);
    assert_eq!(code, 0);
    assert!(out.contains("\"revoked\": true"));
    assert_eq!(ops(&["token", "revoke", &uuid_like()], &env).0, 1);
}

fn uuid_like() -> String {
    "0190f6a4-6c2e-7d4b-9a51-3c6f0e2b9a10".to_owned()
}

#[test]
fn telemetry_export_and_scale_gate() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/keel.db", dir.path().display());
    let env = [("DATABASE_URL", url.as_str())];
    assert_eq!(ops(&["migrate"], &env).0, 0);
    let out = dir.path().join("reports/production-telemetry.md");
    let out_s = out.to_str().unwrap();
    let (code, stdout, err) = ops(&["telemetry", "export", "--days", "7", "--out", out_s, "--slo-p95-ms", "800"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.is_empty(), "nothing but the report, and it went to the file");
    let md = std::fs::read_to_string(&out).unwrap();
    for section in ["## Verdict", "slow routes by p95", "slow routes by p99"] {
        assert!(md.contains(section), "{section} missing:\n{md}");
    }
    let (code, stdout, _) = ops(&["telemetry", "export", "--out", "-", "--format", "json"], &env);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(v["verdict"].is_object());
    let (code, stdout, err) = ops(&["scale", "gate", "--monthly-spend", "300", "--mrr", "5000"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("Phase 0 decision:") && stdout.contains("Cost gate:") && stdout.contains("Load target:"),
        "{stdout}"
    );
    assert!(stdout.to_lowercase().contains("approval"), "spend over the $250 ceiling needs owner approval: {stdout}");
    let (code, _, err) = ops(&["scale", "gate", "--load-target", "lots soon"], &env);
    assert_eq!(code, 2);
    assert!(err.contains("--load-target"), "{err}");
    let (code, _, err) = ops(&["telemetry", "export", "--days", "0", "--out", "-"], &env);
    assert_ne!(code, 0);
    assert!(err.contains("--days"), "{err}");
}

#[test]
fn health_deep_reports_inside_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/keel.db", dir.path().display());
    let env = [("DATABASE_URL", url.as_str())];
    assert_eq!(ops(&["migrate"], &env).0, 0);
    // Nothing listens on port 1: the HTTP part reports the error, the deep part still runs.
    let (code, out, err) = ops(&["health", "--url", "http://127.0.0.1:1", "--deep", "--json"], &env);
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["http"]["error"].as_str().unwrap().contains("cannot reach"));
    assert_eq!(v["database"]["backend"], "sqlite");
    assert_eq!(v["database"]["rows.invoices"], 0);
    for component in ["tenancy", "billing", "queue", "ratelimit", "telemetry", "campaigns"] {
        assert_eq!(v["database"]["migrations"][component], latest(component), "{component}: {v}");
    }
    // Without --deep an unreachable server is exit 3.
    assert_eq!(ops(&["health", "--url", "http://127.0.0.1:1"], &env).0, 3);
}

#[test]
fn queue_and_cron_commands() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/keel.db", dir.path().display());
    let env = [("DATABASE_URL", url.as_str())];
    assert_eq!(ops(&["migrate"], &env).0, 0);
    let (code, out, err) =
        ops(&["queue", "enqueue", "--kind", "demo.sleep", "--payload", r#"{"ms":1}"#, "--count", "3", "--json"], &env);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<String> =
        v["enqueued"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 3);
    let dk = [
        "queue",
        "enqueue",
        "--kind",
        "email.send",
        "--payload",
        r#"{"to":"a@example.com","subject":"s","text":"t"}"#,
        "--dedupe-key",
        "k1",
        "--json",
    ];
    // A built-in kind enqueued by hand gets the options its handler is registered with.
    let hook = [
        "queue",
        "enqueue",
        "--kind",
        "webhook.deliver",
        "--payload",
        r#"{"url":"http://127.0.0.1:1/hook","body":{}}"#,
        "--json",
    ];
    let (code, out, err) = ops(&hook, &env);
    assert_eq!(code, 0, "{err}");
    let hook_id = serde_json::from_str::<serde_json::Value>(&out).unwrap()["enqueued"][0]["id"].clone();
    let (code, out, err) = ops(&["queue", "show", hook_id.as_str().unwrap()], &env);
    assert_eq!(code, 0, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["queue"], "webhooks", "{shown}");
    assert_eq!(shown["max_attempts"], 10, "{shown}");
    assert_eq!(ops(&["queue", "cancel", hook_id.as_str().unwrap()], &env).0, 0);
    let first: serde_json::Value = serde_json::from_str(&ops(&dk, &env).1).unwrap();
    let second: serde_json::Value = serde_json::from_str(&ops(&dk, &env).1).unwrap();
    assert_eq!(second["enqueued"][0]["duplicate"], true);
    assert_eq!(first["enqueued"][0]["id"], second["enqueued"][0]["id"]);
    let (code, out, _) = ops(&["queue", "stats", "--json"], &env);
    assert_eq!(code, 0);
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    for k in
        ["pending", "processing", "retrying", "completed", "failed", "dead_letter", "cancelled", "oldest_pending_age_s"]
    {
        assert!(stats.get(k).is_some(), "{k} missing from {stats}");
    }
    assert_eq!(stats["pending"], 4);
    let (code, out, _) = ops(&["queue", "list", "--state", "pending", "--kind", "demo.sleep", "--json"], &env);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap().as_array().unwrap().len(), 3);
    let (code, out, _) = ops(&["queue", "show", &ids[0]], &env);
    assert_eq!(code, 0);
    assert!(out.contains("demo.sleep"));
    let (code, out, _) = ops(&["queue", "cancel", &ids[0]], &env);
    assert_eq!(code, 0);
    assert!(out.contains("cancelled"), "{out}");
    let (code, out, _) = ops(&["queue", "retry", &ids[0]], &env);
    assert_eq!(code, 0);
    assert!(out.contains("pending"), "{out}");
    assert_eq!(ops(&["queue", "list", "--state", "bogus"], &env).0, 2);
    assert_eq!(ops(&["queue", "show", "not-a-uuid"], &env).0, 2);
    assert_eq!(ops(&["queue", "enqueue", "--kind", "x", "--payload", "{nope"], &env).0, 2);
    assert_eq!(ops(&["queue", "pause", "default"], &env).0, 0);
    let stats: serde_json::Value = serde_json::from_str(&ops(&["queue", "stats", "--json"], &env).1).unwrap();
    assert_eq!(stats["paused_queues"], serde_json::json!(["default"]));
    assert!(ops(&["queue", "resume", "default"], &env).1.contains("resumed"));
    assert_eq!(ops(&["queue", "prune", "--older-than", "7d"], &env).0, 0);
    assert_eq!(ops(&["queue", "prune", "--older-than", "soon"], &env).0, 2);
    assert_eq!(ops(&["queue", "requeue-dead"], &env).0, 0);
    let (code, out, _) = ops(&["cron", "runs", "--json"], &env);
    assert_eq!(code, 0);
    assert!(serde_json::from_str::<serde_json::Value>(&out).unwrap().is_array());
    assert_eq!(ops(&["cron", "pause", "all"], &env).0, 0);
    assert!(ops(&["cron", "resume", "all"], &env).1.contains("resumed"));
}

/// A job kind far longer than any fixed column width widens its column: every line of the
/// table keeps the same column boundaries and the kind is printed whole.
#[test]
fn queue_list_table_holds_its_columns_with_a_long_kind() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/keel.db", dir.path().display());
    let env = [("DATABASE_URL", url.as_str())];
    assert_eq!(ops(&["migrate"], &env).0, 0);
    let long = "reports.quarterly_reconciliation_with_the_external_ledger_export";
    for kind in ["demo.sleep", long] {
        let (code, _, err) = ops(&["queue", "enqueue", "--kind", kind, "--payload", r#"{"ms":1}"#], &env);
        assert_eq!(code, 0, "{err}");
    }
    let (code, out, err) = ops(&["queue", "list", "--state", "pending"], &env);
    assert_eq!(code, 0, "{err}");
    let bars = |line: &str| line.char_indices().filter(|(_, c)| *c == '|').map(|(i, _)| i).collect::<Vec<_>>();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "a header, its rule and two jobs:\n{out}");
    assert_eq!(bars(lines[0]).len(), 6, "five columns:\n{out}");
    for l in &lines {
        assert_eq!(bars(l), bars(lines[0]), "every line has the same column boundaries:\n{out}");
    }
    assert!(out.contains(long) && out.contains("demo.sleep"), "{out}");
    assert!(!out.contains('\u{1b}'), "no escape codes when stdout is not a terminal: {out:?}");
    let (_, stats, _) = ops(&["queue", "stats"], &env);
    assert!(stats.lines().all(|l| bars(l) == bars(stats.lines().next().unwrap())), "{stats}");
    assert!(stats.contains("| oldest_pending_age |"), "{stats}");
}
