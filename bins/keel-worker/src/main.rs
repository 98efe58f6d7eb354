//! keel-worker: load config, set up logging, connect, run the worker until SIGTERM or Ctrl-C.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match keel_config::Settings::load(&keel_config::EnvSource) {
        Ok(s) => s,
        Err(problems) => {
            eprintln!("keel-worker: {problems}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = keel_telemetry::init_logging(settings.log_format, &settings.log_filter) {
        eprintln!("keel-worker: {e}");
        return ExitCode::from(2);
    }
    let shutdown = keel_worker::shutdown::on_signal();
    let db = match keel_storage::open(&settings.database, settings.auto_migrate).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("keel-worker: {e}");
            return ExitCode::from(1);
        }
    };
    let ctx = keel_worker::WorkerContext { db: db.clone(), settings };
    let res = keel_worker::run(ctx, shutdown).await;
    db.close().await;
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keel-worker: {e:#}");
            ExitCode::from(1)
        }
    }
}
