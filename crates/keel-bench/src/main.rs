//! `keel-bench <name>`: runs one benchmark family (or `all`) and writes its results.
//!
//! Run it through `cargo xtask bench <name>`, which builds in release mode with the feature of
//! that name, so each case is measured against its peer in the same run.

#[cfg(feature = "queue")]
mod cpu_busy;
mod families;
#[cfg(feature = "queue")]
mod proc_cpu;
mod report;
#[cfg(any(feature = "queue", feature = "ratelimit", feature = "server"))]
mod scratch;
#[cfg(feature = "server")]
mod server;

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    std::process::exit(families::run(&name));
}
