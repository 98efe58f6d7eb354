//! `cargo xtask <task>`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! - `ci`: everything CI runs — fmt check, clippy `-D warnings`, rustdoc, tests on SQLite and
//!   PostgreSQL, schemathesis, cargo-deny. Sets up what it needs (see `pg` and `tools`).
//! - `test`: the test suite on both backends only; without `TEST_DATABASE_URL` it starts a
//!   throwaway PostgreSQL cluster under `target/` and removes it afterwards.
//! - `schemathesis`: the real keel-api fuzzed from its OpenAPI document; any 5xx fails (part of `ci`).
//! - `browser`: the operator console's browser tests (Playwright driving Debian's Chromium
//!   against the real keel-api; part of `ci`, after the Rust tests). Screenshots in `target/browser/`.
//! - `bench <name>|all`: a benchmark family in release mode against its peers.

mod bench;
mod browser;
mod ci;
#[cfg(test)]
mod layers;
#[cfg(test)]
mod manifest;
mod pg;
mod run;
mod schemathesis;
#[cfg(test)]
mod tidy;
mod tools;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let res = match args.first().map(String::as_str) {
        Some("ci") => ci::ci(),
        Some("test") => ci::test(),
        Some("schemathesis") => schemathesis::schemathesis(),
        Some("browser") => browser::browser(),
        Some("bench") => bench::bench(args.get(1).map(String::as_str)),
        _ => {
            eprintln!("usage: cargo xtask ci | test | schemathesis | browser | bench <ratelimit|orgcache|queue|money|telemetry|api|all>");
            return std::process::ExitCode::from(2);
        }
    };
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
