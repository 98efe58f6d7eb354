//! `promtool check metrics` on an exposition a test scraped from a real binary: the Prometheus
//! project's own parser and linter, not one of ours.

use std::io::Write;
use std::process::{Command, Stdio};

fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false)
}

/// Pipes `body` into `promtool check metrics` and panics with its findings if it finds any
/// (a parse error or a lint problem). Returns `false` without checking when promtool is not
/// installed, after printing `SKIPPED (promtool)` to stderr; under `CI=true` a missing promtool
/// fails instead, naming the Debian package (`cargo xtask ci` installs it when run as root).
pub fn promtool_check_metrics(what: &str, body: &str) -> bool {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if in_ci() {
                panic!(
                    "CI=true but promtool is not installed, so {what} cannot be checked: install Debian's \
                     `prometheus` package (apt-get install -y prometheus), which `cargo xtask ci` does as root"
                );
            }
            eprintln!("SKIPPED (promtool): {what}: promtool is not installed (Debian package `prometheus`)");
            return false;
        }
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(body.as_bytes()).expect("write the exposition to promtool");
    }
    let out = child.wait_with_output().expect("promtool runs");
    let findings = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && findings.trim().is_empty(),
        "promtool check metrics refused {what} ({}):\n{findings}\n--- exposition ---\n{body}",
        out.status
    );
    true
}
