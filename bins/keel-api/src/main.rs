//! keel-api: load config, set up logging, bind, serve until SIGTERM or Ctrl-C.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match keel_api::Config::load(&keel_config::EnvSource) {
        Ok(c) => c,
        Err(problems) => {
            eprintln!("keel-api: {problems}");
            return ExitCode::from(keel_api::EXIT_CONFIG);
        }
    };
    if let Err(e) = keel_telemetry::init_logging(config.settings.log_format, &config.settings.log_filter) {
        eprintln!("keel-api: {e}");
        return ExitCode::from(keel_api::EXIT_CONFIG);
    }
    let shutdown = keel_api::shutdown::on_signal();
    match keel_api::run(config, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "keel-api stopped");
            eprintln!("keel-api: {e:#}");
            ExitCode::from(keel_api::EXIT_STARTUP)
        }
    }
}
