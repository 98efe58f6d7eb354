//! host-axum: read the settings, set up logging, serve until SIGTERM or Ctrl-C.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match host_axum::Settings::from_source(&keel_config::EnvSource) {
        Ok(s) => s,
        Err(problems) => {
            eprintln!("host-axum: {problems}");
            return ExitCode::from(2);
        }
    };
    let format = if settings.json_logs { keel_config::LogFormat::Json } else { keel_config::LogFormat::Pretty };
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    if let Err(e) = keel_telemetry::init_logging(format, &filter) {
        eprintln!("host-axum: RUST_LOG: {e}");
        return ExitCode::from(2);
    }
    match host_axum::run(settings, host_axum::shutdown_on_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "host-axum stopped");
            eprintln!("host-axum: {e:#}");
            ExitCode::FAILURE
        }
    }
}
