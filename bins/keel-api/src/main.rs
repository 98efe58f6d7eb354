//! keel-api: load config, set up logging, bind, serve until SIGTERM or Ctrl-C.

use std::process::ExitCode;

// jemalloc, unprefixed so that the bundled SQLite's own allocations go to it as well: with it a
// SQLite burn-down drained 21-26% more jobs per second than under glibc's malloc (issue #19,
// docs/benchmarks.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match keel_api::Config::load(&keel_config::EnvSource) {
        Ok(c) => c,
        Err(problems) => {
            eprintln!("keel-api: {problems}");
            return ExitCode::from(keel_api::EXIT_CONFIG);
        }
    };
    let otel = match keel_telemetry::OtelSettings::from_source(&keel_config::EnvSource, "keel-api") {
        Ok(o) => o,
        Err(e) => {
            eprintln!("keel-api: {e}");
            return ExitCode::from(keel_api::EXIT_CONFIG);
        }
    };
    let s = &config.settings;
    let telemetry = match keel_telemetry::init_telemetry(s.log_format, &s.log_filter, otel.as_ref()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("keel-api: {e}");
            return ExitCode::from(keel_api::EXIT_CONFIG);
        }
    };
    let shutdown = keel_api::shutdown::on_signal();
    let res = keel_api::run(config, shutdown).await;
    // The last requests' spans leave before the process does.
    telemetry.shutdown().await;
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "keel-api stopped");
            eprintln!("keel-api: {e:#}");
            ExitCode::from(keel_api::EXIT_STARTUP)
        }
    }
}
