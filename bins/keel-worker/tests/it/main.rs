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
