//! The benchmark families, one module and one cargo feature each.

use crate::report::{self, Row};

#[cfg(feature = "api")]
mod api;
#[cfg(feature = "api")]
mod api_storm;
#[cfg(feature = "money")]
mod money;
#[cfg(feature = "money")]
mod money_report;
#[cfg(feature = "orgcache")]
mod orgcache;
#[cfg(feature = "queue")]
mod queue;
#[cfg(feature = "queue")]
mod queue_node;
#[cfg(feature = "queue")]
mod queue_race;
#[cfg(feature = "ratelimit")]
mod ratelimit;
#[cfg(feature = "telemetry")]
mod telemetry;

type Family = (&'static str, fn() -> Result<Vec<Row>, String>);

/// Every family compiled into this build, in the order `all` runs them.
fn families() -> Vec<Family> {
    let compiled: &[Family] = &[
        #[cfg(feature = "money")]
        ("money", money::run),
        #[cfg(feature = "ratelimit")]
        ("ratelimit", ratelimit::run),
        #[cfg(feature = "orgcache")]
        ("orgcache", orgcache::run),
        #[cfg(feature = "queue")]
        ("queue", queue::run),
        #[cfg(feature = "telemetry")]
        ("telemetry", telemetry::run),
        #[cfg(feature = "api")]
        ("api", api::run),
    ];
    compiled.to_vec()
}

pub(crate) fn run(name: &str) -> i32 {
    let all = families();
    let selected: Vec<_> = all.iter().filter(|(n, _)| name == "all" || *n == name).collect();
    if selected.is_empty() {
        let names: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
        eprintln!(
            "benchmark {name:?} is not in this build (built with: {}); run it as `cargo xtask bench NAME`",
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        );
        return 2;
    }
    let mut code = 0;
    for (family, f) in selected {
        eprintln!("== bench {family}");
        match f() {
            Ok(rows) => {
                if let Err(e) = report::write(family, &rows) {
                    eprintln!("bench {family}: could not write results: {e}");
                    code = 1;
                }
            }
            Err(e) => {
                eprintln!("bench {family} failed: {e}");
                code = 1;
            }
        }
    }
    code
}
