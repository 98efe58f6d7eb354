//! The tools `cargo xtask ci` needs beyond Rust, installed on demand so the README's command
//! works on a fresh machine: Python packages into a virtual environment under `target/`,
//! cargo subcommands with `cargo install`, Debian packages with apt-get when xtask runs as root
//! (as CI does), otherwise an error naming what to install.

use crate::run::{cargo, step};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The schemathesis release `cargo xtask schemathesis` is written against (its CLI flags).
pub(crate) const SCHEMATHESIS: &str = "4.32.5";
/// The Playwright and pytest releases the browser tests are written against. Playwright's wheel
/// carries its driver; no browser is downloaded (the tests launch Debian's Chromium).
pub(crate) const PLAYWRIGHT: &str = "1.65.3";
pub(crate) const PYTEST: &str = "9.2.0";
/// The cargo-deny releases whose `deny.toml` format and checks CI uses.
const CARGO_DENY: &str = "^0.20";

/// Whether xtask runs as root (CI does): then apt-get may install, and the test database
/// server runs as the unprivileged `postgres` user.
pub(crate) fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Whether `program` is an executable file on `PATH`.
pub(crate) fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else { return false };
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .any(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Ensures the command `program` exists, installing the Debian `package` that ships it when
/// missing (e.g. `debian_tool("promtool", "prometheus", "checking the metrics exposition")`).
pub(crate) fn debian_tool(program: &str, package: &str, purpose: &str) -> anyhow::Result<()> {
    if on_path(program) {
        return Ok(());
    }
    apt_install(&[package], purpose)?;
    if !on_path(program) {
        bail!("the Debian package {package} was installed but `{program}` is still not on PATH");
    }
    Ok(())
}

/// `apt-get install -y` as root (retried after `apt-get update` when the package lists are
/// stale or empty); otherwise an error saying what to install and why.
pub(crate) fn apt_install(packages: &[&str], purpose: &str) -> anyhow::Result<()> {
    let list = packages.join(" ");
    if !is_root() || !on_path("apt-get") {
        bail!("{purpose} needs the Debian package(s) {list}: install them with `sudo apt-get install -y {list}` and run again");
    }
    let install = || {
        let mut c = Command::new("apt-get");
        c.args(["install", "-y", "--no-install-recommends"]).args(packages).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    if step(&format!("install {list} ({purpose})"), install()).is_ok() {
        return Ok(());
    }
    let mut update = Command::new("apt-get");
    update.args(["update", "-q"]);
    step("apt-get update", update)?;
    step(&format!("install {list} ({purpose})"), install())
}

/// The virtual environment's directory.
fn venv_dir() -> PathBuf {
    crate::run::target_dir().join("xtask-venv")
}

/// The Python of xtask's virtual environment, created on first use from `$PYTHON` (default
/// `python3`). Packages go there, never into the system's or the user's site-packages.
pub(crate) fn venv_python() -> anyhow::Result<PathBuf> {
    let dir = venv_dir();
    let python = dir.join("bin").join("python");
    if Command::new(&python).arg("--version").output().is_ok_and(|o| o.status.success()) {
        return Ok(python);
    }
    // Absent, or left broken by a Python that moved: start over.
    let _ = std::fs::remove_dir_all(&dir);
    let base = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let create = || {
        let mut c = Command::new(&base);
        c.args(["-m", "venv"]).arg(&dir);
        c
    };
    if step("create the Python virtual environment", create()).is_err() {
        // Debian's python3 ships `venv` without ensurepip until python3-venv is installed.
        if !on_path(&base) {
            apt_install(&["python3", "python3-venv"], "the Python test tools (schemathesis)")?;
        } else {
            apt_install(&["python3-venv"], "a Python virtual environment for the test tools")?;
        }
        step("create the Python virtual environment", create())?;
    }
    Ok(python)
}

/// schemathesis at the pinned version in the virtual environment; returns that Python, to be
/// run as `python -m schemathesis.cli`.
pub(crate) fn schemathesis() -> anyhow::Result<PathBuf> {
    let python = venv_python()?;
    let have = installed_version(&python);
    if have.as_deref().is_some_and(|v| v.ends_with(SCHEMATHESIS)) {
        eprintln!("{}", have.unwrap_or_default());
        return Ok(python);
    }
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]);
    pip.arg(format!("schemathesis=={SCHEMATHESIS}"));
    step(&format!("install schemathesis {SCHEMATHESIS} into {}", venv_dir().display()), pip)?;
    match installed_version(&python) {
        Some(v) if v.ends_with(SCHEMATHESIS) => {
            eprintln!("{v}");
            Ok(python)
        }
        other => bail!("schemathesis {SCHEMATHESIS} was installed but {} reports {other:?}", python.display()),
    }
}

/// Playwright and pytest at the pinned versions in the virtual environment; returns its Python.
pub(crate) fn playwright() -> anyhow::Result<PathBuf> {
    let python = venv_python()?;
    let have = |pkg: &str, want: &str| {
        Command::new(&python)
            .args(["-c", &format!("import importlib.metadata as m; print(m.version('{pkg}'))")])
            .output()
            .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == want)
    };
    if have("playwright", PLAYWRIGHT) && have("pytest", PYTEST) {
        return Ok(python);
    }
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]);
    pip.arg(format!("playwright=={PLAYWRIGHT}")).arg(format!("pytest=={PYTEST}"));
    step(&format!("install playwright {PLAYWRIGHT} and pytest {PYTEST} into {}", venv_dir().display()), pip)?;
    if !(have("playwright", PLAYWRIGHT) && have("pytest", PYTEST)) {
        bail!(
            "playwright {PLAYWRIGHT} and pytest {PYTEST} were installed but {} does not report them",
            python.display()
        );
    }
    Ok(python)
}

fn installed_version(python: &Path) -> Option<String> {
    let out = Command::new(python).args(["-m", "schemathesis.cli", "--version"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// cargo-deny, installed with `cargo install` when `cargo deny` is missing.
pub(crate) fn cargo_deny() -> anyhow::Result<()> {
    let have = cargo().args(["deny", "--version"]).output().is_ok_and(|o| o.status.success());
    if have {
        return Ok(());
    }
    let mut install = cargo();
    install.args(["install", "cargo-deny", "--locked", "--version", CARGO_DENY]);
    step("install cargo-deny", install).context("cargo-deny is needed for the licence, ban and source checks")
}
