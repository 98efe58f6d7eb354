//! Black-box tests of the keel-worker binary.

/// The components every test database of this binary has installed.
const SCHEMAS: &[&keel_storage::Schema] = keel_worker::SCHEMAS;

mod crash;
mod health;
mod kinds;
mod metrics;
mod password_reset;
mod retention;
mod switches;

use keel_testkit::Proc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_keel-worker");

#[test]
fn starts_idles_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/keel.db", dir.path().display());
    let mut p = Proc::start(BIN, &[], &[("DATABASE_URL", &db), ("KEEL_WORKER_METRICS_BIND", "127.0.0.1:0")]);
    p.wait_for(Duration::from_secs(30), |v| v["message"] == "worker started");
    p.signal("TERM");
    let status = p.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status:?}: {}", p.seen.join("\n"));
    assert!(p.seen.iter().any(|l| l.contains("worker stopped")));
}

#[test]
fn bad_configuration_exits_2() {
    let out = std::process::Command::new(BIN).env("DATABASE_URL", "ftp://x").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"));
}

/// The binary's allocator is jemalloc and owns the process's `malloc`, so the bundled SQLite
/// allocates through it too (issue #19): only an unprefixed jemalloc reads `MALLOC_CONF`.
#[cfg(not(target_env = "msvc"))]
#[test]
fn allocates_with_jemalloc_sqlite_included() {
    let out = std::process::Command::new(BIN)
        .env("DATABASE_URL", "ftp://x")
        .env("MALLOC_CONF", "stats_print:true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Begin jemalloc statistics"), "{err}");
}

#[test]
fn production_without_a_job_encryption_key_refuses_to_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .current_dir(dir.path())
        .env("KEEL_ENV", "production")
        .env("INTERNAL_API_SECRET", "s".repeat(40))
        .env("DATABASE_URL", format!("sqlite://{}/keel.db", dir.path().display()))
        .env_remove("KEEL_JOB_ENCRYPTION_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 problem(s)") && err.contains("KEEL_JOB_ENCRYPTION_KEY"), "{err}");
    assert!(!dir.path().join("data").exists(), "no development key file in production");
}

/// Development without a key: the first start creates `./data/job-encryption.key` (0600), the
/// next start reuses it, and neither logs the key.
#[test]
fn development_creates_the_key_file_once_and_reuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/keel.db", dir.path().display());
    let env =
        [("DATABASE_URL", db.as_str()), ("KEEL_WORKER_METRICS_BIND", "127.0.0.1:0"), ("KEEL_JOB_ENCRYPTION_KEY", "")];
    let key_file = dir.path().join("data/job-encryption.key");
    let mut seen = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let mut p = Proc::start_in(Some(dir.path()), BIN, &[], &env);
        let line =
            p.wait_for(Duration::from_secs(30), |v| v["fields"]["key_id"].is_string() || v["key_id"].is_string());
        ids.push(line.to_string());
        p.wait_for(Duration::from_secs(30), |v| v["message"] == "worker started");
        p.signal("TERM");
        assert!(p.wait_exit(Duration::from_secs(20)).success(), "{}", p.seen.join("\n"));
        seen.extend(p.seen.clone());
        if ids.len() == 1 {
            assert!(key_file.exists());
        }
    }
    let text = std::fs::read_to_string(&key_file).unwrap();
    let (id, key) = text.trim().split_once(':').unwrap();
    assert!(id.starts_with("dev-") && key.len() >= 43, "{id}");
    assert!(ids.iter().all(|l| l.contains(id)), "both starts used the same key: {ids:?}");
    assert!(!seen.iter().any(|l| l.contains(key)), "the key was logged");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
}
