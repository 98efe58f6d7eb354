//! `keel-bench <name>`: runs one benchmark family (or `all`) and writes its results.
//!
//! Run it through `cargo xtask bench <name>`, which builds in release mode with the `peers`
//! feature so each case is measured against its peer in the same run.

mod report;

#[cfg(feature = "peers")]
mod families;

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    #[cfg(feature = "peers")]
    {
        let code = families::run(&name);
        std::process::exit(code);
    }
    #[cfg(not(feature = "peers"))]
    {
        eprintln!("keel-bench {name}: build with --features peers (use `cargo xtask bench {name}`)");
        std::process::exit(2);
    }
}
