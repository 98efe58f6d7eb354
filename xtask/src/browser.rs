//! `cargo xtask browser`: the operator console tested as a person would use it. Builds keel-api
//! and keel-ops, then runs the pytest suite in `bins/keel-api/tests/browser/`, which starts the
//! real binary on a fresh SQLite database per module, seeds it with keel-ops and drives Debian's
//! Chromium through Playwright. Chromium comes from apt (`chromium`, installed on demand as
//! root), Playwright and pytest from pip into xtask's virtual environment; nothing downloads a
//! browser. Screenshots land in `target/browser/`.

use crate::run::step;
use anyhow::Context;
use std::process::Command;

/// Where Debian's package puts the browser.
const CHROMIUM: &str = "/usr/bin/chromium";

pub(crate) fn browser() -> anyhow::Result<()> {
    eprintln!("\n== browser tests of the operator console (Chromium + Playwright)");
    crate::tools::debian_tool("chromium", "chromium", "the console's browser tests drive Debian's Chromium")?;
    let python = crate::tools::playwright()?;
    let (api, ops) = crate::schemathesis::build_binaries()?;
    let out = crate::run::target_dir().join("browser");
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let chromium = if std::path::Path::new(CHROMIUM).exists() { CHROMIUM.to_owned() } else { "chromium".to_owned() };
    let mut t = Command::new(python);
    crate::schemathesis::clean_env(&mut t);
    t.current_dir(crate::run::root().join("bins/keel-api/tests/browser"))
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "."])
        .env("KEEL_API_BIN", api)
        .env("KEEL_OPS_BIN", ops)
        .env("KEEL_CHROMIUM", chromium)
        .env("KEEL_BROWSER_OUT", &out);
    step("browser tests (pytest + Playwright)", t)?;
    eprintln!("browser tests: screenshots in {}", out.display());
    Ok(())
}
