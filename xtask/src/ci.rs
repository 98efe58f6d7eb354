//! `cargo xtask ci` and `cargo xtask test`.

use crate::run::{cargo, step};
use anyhow::{bail, Context};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::Command;
use std::time::Duration;

/// Where the Postgres suites run when `TEST_DATABASE_URL` is not set: the local server that
/// every development and CI machine of this project has.
const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub(crate) fn ci() -> anyhow::Result<()> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    step("format check", fmt)?;
    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]);
    step("clippy", clippy)?;
    doc()?;
    test()?;
    crate::schemathesis::schemathesis()?;
    deny()?;
    eprintln!("\nxtask ci: all green");
    Ok(())
}

/// rustdoc over every crate with warnings as errors: a broken intra-doc link or a malformed
/// doc comment fails CI. The doctests themselves run in `cargo test --workspace`.
fn doc() -> anyhow::Result<()> {
    let mut d = cargo();
    d.args(["doc", "--workspace", "--no-deps", "--locked"]).env("RUSTDOCFLAGS", "-D warnings");
    step("rustdoc (warnings denied)", d)
}

/// The whole test suite, with the Postgres suites pointed at a real server. Refuses to run
/// when no server answers: a Postgres suite that silently skips is a lie.
pub(crate) fn test() -> anyhow::Result<()> {
    let url = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_DATABASE_URL.to_owned());
    check_reachable(&url)?;
    ensure_promtool()?;
    let mut t = cargo();
    t.args(["test", "--workspace", "--locked"]).env("TEST_DATABASE_URL", &url);
    step("tests (SQLite and PostgreSQL)", t)
}

/// The metrics tests pipe each binary's `/metrics` into `promtool check metrics` and fail
/// without it under `CI=true`. It comes from Debian's `prometheus` package: installed with
/// apt-get when running as root (as CI does), otherwise a message naming the package.
fn ensure_promtool() -> anyhow::Result<()> {
    let have = |cmd: &str, args: &[&str]| Command::new(cmd).args(args).output().is_ok_and(|o| o.status.success());
    if have("promtool", &["--version"]) {
        return Ok(());
    }
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        bail!("promtool is missing: install Debian's `prometheus` package (sudo apt-get install -y prometheus)");
    }
    let mut update = Command::new("apt-get");
    update.args(["update", "-qq"]);
    step("apt-get update (for promtool)", update)?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "-qq", "--no-install-recommends", "prometheus"])
        .env("DEBIAN_FRONTEND", "noninteractive");
    step("install promtool (Debian package prometheus)", install)?;
    if !have("promtool", &["--version"]) {
        bail!("the `prometheus` package is installed but promtool does not run");
    }
    Ok(())
}

fn check_reachable(url: &str) -> anyhow::Result<()> {
    let hostport = url
        .split_once("://")
        .map(|(_, r)| r)
        .and_then(|r| r.split(['/', '?']).next())
        .map(|a| a.rsplit('@').next().unwrap_or(a))
        .unwrap_or("127.0.0.1:5432");
    let hostport = if hostport.contains(':') { hostport.to_owned() } else { format!("{hostport}:5432") };
    let addrs: Vec<_> = hostport.to_socket_addrs().map(|a| a.collect()).unwrap_or_default();
    if addrs.iter().any(|a| TcpStream::connect_timeout(a, Duration::from_secs(3)).is_ok()) {
        return Ok(());
    }
    bail!(
        "no PostgreSQL answers at {hostport} (TEST_DATABASE_URL). Start it (e.g. `pg_ctlcluster --skip-systemctl-redirect 15 main start`) or set TEST_DATABASE_URL"
    )
}

/// cargo-deny: licenses, bans and sources always; advisories only when the advisory database
/// can be fetched (this project's machines are offline apart from package registries).
fn deny() -> anyhow::Result<()> {
    let have = Command::new("cargo").args(["deny", "--version"]).output().map(|o| o.status.success()).unwrap_or(false);
    if !have {
        let mut install = cargo();
        install.args(["install", "cargo-deny", "--locked", "--version", "^0.20"]);
        step("install cargo-deny", install)?;
    }
    let mut d = cargo();
    d.args(["deny", "--all-features", "check", "licenses", "bans", "sources"]);
    step("cargo deny (licenses, bans, sources)", d)?;
    eprintln!("\n== cargo deny (advisories)");
    let out = cargo().args(["deny", "check", "advisories"]).output().context("cannot run cargo deny")?;
    let text = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        eprintln!("advisories: ok");
    } else if text.contains("error[vulnerability]") || text.contains("error[unsound]") || text.contains("error[yanked]")
    {
        eprintln!("{text}");
        bail!("cargo deny found advisories");
    } else {
        eprintln!("advisories: SKIPPED — the advisory database could not be fetched (offline); run `cargo deny check advisories` where it is reachable");
    }
    Ok(())
}
