//! `cargo xtask ci` and `cargo xtask test`.

use crate::run::{cargo, step};
use anyhow::{bail, Context};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

pub(crate) fn ci() -> anyhow::Result<()> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    step("format check", fmt)?;
    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]);
    step("clippy", clippy)?;
    doc()?;
    test()?;
    crate::browser::browser()?;
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

/// The whole test suite, with the Postgres suites pointed at a real server: the one
/// `TEST_DATABASE_URL` names (refused when nothing answers there: a Postgres suite that
/// silently skips is a lie), or else a throwaway cluster xtask starts and removes itself.
pub(crate) fn test() -> anyhow::Result<()> {
    ensure_promtool()?;
    match std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.trim().is_empty()) {
        Some(url) => {
            check_reachable(&url)?;
            run_tests(&url)
        }
        None => {
            // Dropped when this block ends: the cluster is stopped and deleted, pass or fail.
            let cluster = crate::pg::Cluster::start()?;
            run_tests(&cluster.url())
        }
    }
}

fn run_tests(database_url: &str) -> anyhow::Result<()> {
    let mut t = cargo();
    t.args(["test", "--workspace", "--locked"]).env("TEST_DATABASE_URL", database_url);
    step("tests (SQLite and PostgreSQL)", t)
}

/// The metrics tests pipe each binary's `/metrics` into `promtool check metrics` and fail
/// without it under `CI=true`. It comes from Debian's `prometheus` package: installed with
/// apt-get when running as root (as CI does), otherwise a message naming the package.
fn ensure_promtool() -> anyhow::Result<()> {
    crate::tools::debian_tool("promtool", "prometheus", "the metrics tests check each binary's /metrics with promtool")
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
        "no PostgreSQL answers at {hostport} (TEST_DATABASE_URL). Start that server, or unset TEST_DATABASE_URL and xtask starts a throwaway one"
    )
}

/// cargo-deny: licenses, bans and sources always; advisories only when the advisory database
/// can be fetched (this project's machines are offline apart from package registries).
fn deny() -> anyhow::Result<()> {
    crate::tools::cargo_deny()?;
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
