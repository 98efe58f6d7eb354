//! Black-box tests of the keel-ops binary.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_keel-ops");

fn ops(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("DATABASE_URL").env_remove("KEEL_ENV").env_remove("INTERNAL_API_SECRET");
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
        &[("KEEL_BIND", "x"), ("KEEL_ENV", "production"), ("DATABASE_URL", "redis://:topsecret@h/0")],
    );
    assert_eq!(code, 2, "{out}{err}");
    for var in ["KEEL_BIND", "DATABASE_URL", "INTERNAL_API_SECRET"] {
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
    assert_eq!(v["current"], 0);
    let pending = v["pending"].as_array().unwrap().len();
    assert!(pending >= 1);
    let (code, out, _) = ops(&["migrate", "--json"], &env);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["applied"].as_array().unwrap().len(), pending);
    let (code, out, _) = ops(&["migrate"], &env);
    assert_eq!(code, 0);
    assert!(out.contains("nothing to apply"), "{out}");
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
