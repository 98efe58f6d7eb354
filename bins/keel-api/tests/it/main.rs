//! Black-box tests of keel-api: the real router on a random port, and the real binary.

/// The components every test database of this binary has installed.
const SCHEMAS: &[&keel_storage::Schema] = keel_api::SCHEMAS;

mod basics;
mod budget;
mod connections;
mod console;
mod disk_full;
mod edge;
mod fixture;
mod health;
mod invoices;
mod logs;
mod metrics;
mod openapi_sync;
mod ops;
mod ops_schema;
mod otel;
mod process;
mod recovery;
mod reports;
mod smoke;
mod switches;
mod telemetry;
mod tenancy;
mod throttle;

use keel_api::{AppState, Config};
use keel_testkit::TestDb;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

/// A running in-process server; cancelled on drop.
pub(crate) struct Server {
    pub addr: SocketAddr,
    /// The metrics listener (`KEEL_METRICS_BIND`'s counterpart, also on port 0).
    pub metrics_addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub _db: TestDb,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Server {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub(crate) fn metrics_url(&self, path: &str) -> String {
        format!("http://{}{}", self.metrics_addr, path)
    }
}

pub(crate) async fn start(t: TestDb) -> Server {
    start_with(t, &[]).await
}

pub(crate) async fn start_with(t: TestDb, env: &[(&str, &str)]) -> Server {
    start_state(t, env, |_| {}).await
}

/// Starts the server with a state adjusted by `tweak` (e.g. a smaller report page size).
/// The job encryption key of in-process test servers (a real server resolves one at startup).
pub(crate) const TEST_JOB_KEY: &str = keel_testkit::TEST_JOB_ENCRYPTION_KEY;

/// The configuration a test server gets from `env`, with [`TEST_JOB_KEY`] unless `env` sets one.
pub(crate) fn config(env: &[(&str, &str)]) -> Config {
    let mut vars: std::collections::HashMap<String, String> =
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    vars.entry("KEEL_JOB_ENCRYPTION_KEY".into()).or_insert_with(|| TEST_JOB_KEY.into());
    Config::load(&keel_config::MapSource(vars)).unwrap()
}

pub(crate) async fn start_state(t: TestDb, env: &[(&str, &str)], tweak: impl FnOnce(&mut AppState)) -> Server {
    let config = config(env);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let mut state = AppState::new(t.db.clone(), config);
    tweak(&mut state);
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics.local_addr().unwrap();
    tokio::spawn(keel_api::serve_metrics(metrics, state.clone(), shutdown.clone()));
    tokio::spawn(keel_api::serve(listener, state, shutdown.clone()));
    Server { addr, metrics_addr, shutdown, _db: t }
}
