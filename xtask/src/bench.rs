//! `cargo xtask bench <name>`: one family (a keel-bench feature) built in release mode.

use crate::run::{cargo, step};
use anyhow::bail;

const FAMILIES: &[&str] = &["ratelimit", "orgcache", "queue", "money", "telemetry", "api"];

pub(crate) fn bench(name: Option<&str>) -> anyhow::Result<()> {
    let Some(name) = name else { bail!("name a benchmark: {} or all", FAMILIES.join(", ")) };
    if name != "all" && !FAMILIES.contains(&name) {
        bail!("unknown benchmark {name:?}; choose one of {} or all", FAMILIES.join(", "));
    }
    let mut c = cargo();
    c.args(["run", "--release", "--locked", "-p", "keel-bench", "--features", name, "--", name]);
    if std::env::var("TEST_DATABASE_URL").is_err() {
        c.env("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres");
    }
    step(&format!("bench {name}"), c)
}
