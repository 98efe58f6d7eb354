//! `cargo xtask <task>`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! - `ci`: everything CI runs — fmt check, clippy `-D warnings`, tests on SQLite and
//!   PostgreSQL, cargo-deny.
//! - `test`: the test suite on both backends only.
//! - `bench <name>|all`: a benchmark family in release mode against its peers.

mod bench;
mod ci;
mod run;
#[cfg(test)]
mod tidy;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let res = match args.first().map(String::as_str) {
        Some("ci") => ci::ci(),
        Some("test") => ci::test(),
        Some("bench") => bench::bench(args.get(1).map(String::as_str)),
        _ => {
            eprintln!("usage: cargo xtask ci | test | bench <ratelimit|orgcache|queue|money|all>");
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
