//! `keel-bench <name>`: runs one benchmark family (or `all`) and writes its results.
//!
//! Run it through `cargo xtask bench <name>`, which builds in release mode with the feature of
//! that name, so each case is measured against its peer in the same run.

// Plain std, compiled in every build (only the queue family reads them) so that their tests
// run in `cargo xtask ci`, which builds no family.
#[cfg_attr(not(feature = "queue"), allow(dead_code))]
mod cpu_busy;
mod families;
#[cfg_attr(not(feature = "queue"), allow(dead_code))]
mod proc_cpu;
mod report;
#[cfg(any(feature = "queue", feature = "ratelimit", feature = "server"))]
mod scratch;
#[cfg(feature = "server")]
mod server;

// The allocator keel-worker and keel-api ship with, since Keel's cases run in this process:
// jemalloc, unprefixed so that the bundled SQLite's own allocations go to it as well: with it a
// SQLite burn-down drained 21-26% more jobs per second than under glibc's malloc (issue #19,
// docs/benchmarks.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    std::process::exit(families::run(&name));
}
