//! keel-worker: load config, set up logging, connect, run jobs and scheduled work until SIGTERM
//! or Ctrl-C; SIGHUP (and a change of `KEEL_SWITCHES_FILE`) re-reads the incident switches.

use std::process::ExitCode;
use std::sync::Arc;

// jemalloc, unprefixed so that the bundled SQLite's own allocations go to it as well: with it a
// SQLite burn-down drained 21-26% more jobs per second than under glibc's malloc (issue #19,
// docs/benchmarks.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let source = keel_config::EnvSource;
    let otel = match keel_telemetry::OtelSettings::from_source(&source, "keel-worker") {
        Ok(o) => o,
        Err(e) => {
            eprintln!("keel-worker: {e}");
            return ExitCode::from(2);
        }
    };
    let (config, switches) =
        match (keel_worker::WorkerConfig::load(&source), keel_queue::SwitchBoard::from_source(&source)) {
            (Ok(c), Ok(s)) => (c, s),
            (a, b) => {
                let mut problems = Vec::new();
                if let Err(p) = a {
                    problems.extend(p.0);
                }
                if let Err(p) = b {
                    problems.extend(p.0);
                }
                eprintln!("keel-worker: {}", keel_config::Problems(problems));
                return ExitCode::from(2);
            }
        };
    let s = &config.settings;
    let telemetry = match keel_telemetry::init_telemetry(s.log_format, &s.log_filter, otel.as_ref()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("keel-worker: {e}");
            return ExitCode::from(2);
        }
    };
    let code = serve(config, switches).await;
    // The last jobs' spans leave before the process does.
    telemetry.shutdown().await;
    code
}

async fn serve(config: keel_worker::WorkerConfig, switches: keel_queue::SwitchBoard) -> ExitCode {
    let shutdown = keel_worker::shutdown::on_signal();
    keel_worker::watch_switches(switches.clone());
    let limits = keel_storage::SessionLimits { pool: config.settings.pool, ..Default::default() };
    let s = &config.settings;
    let db = match keel_storage::open_limited(&s.database, s.auto_migrate, keel_worker::SCHEMAS, limits).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("keel-worker: {e}");
            return ExitCode::from(1);
        }
    };
    // Once the database is there (a process that cannot start leaves no key file behind).
    let mut config = config;
    if let Err(e) = config.resolve_keyring() {
        eprintln!("keel-worker: {e:#}");
        return ExitCode::from(2);
    }
    let metrics_bind = config.metrics_bind;
    let listener = match tokio::net::TcpListener::bind(metrics_bind).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("keel-worker: cannot bind KEEL_WORKER_METRICS_BIND={metrics_bind}: {e}");
            return ExitCode::from(1);
        }
    };
    let health = config.health;
    let ctx = keel_worker::WorkerContext { db: db.clone(), config, switches };
    // The keyring lets the health and metrics store read sealed jobs' rows like the worker does.
    let store = keel_worker::open_store(&ctx);
    let metrics = match keel_worker::WorkerMetrics::new(&db, store.clone(), ctx.config.metrics_snapshot_interval) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("keel-worker: metrics: {e}");
            return ExitCode::from(1);
        }
    };
    let worker = match keel_worker::build(&ctx) {
        Ok(w) => Arc::new(w.with_observer(metrics.jobs.clone())),
        Err(e) => {
            eprintln!("keel-worker: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = metrics.register_worker(&worker) {
        eprintln!("keel-worker: metrics: {e}");
        return ExitCode::from(1);
    }
    tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "metrics listening");
    let app = keel_worker::metrics_router(&metrics, worker.clone(), store, db.clone(), health);
    let metrics = tokio::spawn(keel_worker::serve_metrics(listener, app, shutdown.clone()));
    let res = keel_worker::run_worker(&ctx, worker, shutdown).await;
    let _ = metrics.await;
    db.close().await;
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keel-worker: {e:#}");
            ExitCode::from(1)
        }
    }
}
