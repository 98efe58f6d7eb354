//! Starting the service in process on port 0, and polling with a deadline.

use host_axum::{AppState, CancellationToken, Settings};
use keel_config::MapSource;
use keel_storage::Db;
use keel_testkit::TestDb;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How long a test waits for the worker or the database to reach a state before failing.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);
/// Pause between polls: short, so a test finishes as soon as the state is reached.
const POLL: Duration = Duration::from_millis(20);

/// A generous quota, for the tests that are not about rate limiting.
pub(crate) const ROOMY: &str = "1000/1m,burst=1000";

/// A running service.
pub(crate) struct Service {
    pub(crate) public: SocketAddr,
    pub(crate) metrics: SocketAddr,
    pub(crate) db: Db,
    pub(crate) http: reqwest::Client,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

/// Migrates the test's empty database the way the service does at startup, then serves it.
pub(crate) async fn start(t: &TestDb, quota: &str) -> Service {
    host_axum::migrate(&t.db).await.expect("the service's migrations");
    let settings = Settings::from_source(&MapSource::new([("HOST_AXUM_RATE_LIMIT", quota)])).expect("settings");
    let state = AppState::new(t.db.clone(), &settings).expect("state");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (public, metrics) = (listener.local_addr().unwrap(), metrics_listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(host_axum::serve(listener, metrics_listener, state, shutdown.clone()));
    Service { public, metrics, db: t.db.clone(), http: reqwest::Client::new(), shutdown, task }
}

impl Service {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.public)
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    pub(crate) async fn post_note(&self, body: serde_json::Value) -> reqwest::Response {
        self.http.post(self.url("/notes")).json(&body).send().await.unwrap()
    }

    /// Stops the service and checks it stopped cleanly.
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("serve did not panic").expect("serve stopped cleanly");
    }
}

/// Polls `check` until it returns `Some`, failing after [`DEADLINE`].
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: not reached within {DEADLINE:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// One integer from SQL that reads the same on both backends.
pub(crate) async fn count(db: &Db, sql: &str) -> i64 {
    match db {
        Db::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await,
        Db::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await,
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// `_sqlx_migrations`, as (version, description).
pub(crate) async fn sqlx_migrations(db: &Db) -> Vec<(i64, String)> {
    let sql = "SELECT version, description FROM _sqlx_migrations ORDER BY version";
    match db {
        Db::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await,
        Db::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await,
    }
    .unwrap()
}
