//! Shared helpers: a store on a test database with a hand-driven clock.

use keel_queue::{open_with, Claim, Job, ManualClock, Store, StoreOptions};
use keel_testkit::TestDb;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct Fixture {
    pub t: TestDb,
    pub clock: ManualClock,
    pub store: Arc<dyn Store>,
}

pub(crate) fn fixture(t: TestDb) -> Fixture {
    let clock = ManualClock::at_epoch_2030();
    let store = open_with(t.db.clone(), Arc::new(clock.clone()), StoreOptions::default());
    Fixture { t, clock, store }
}

pub(crate) fn claim(queue: &str, limit: u32) -> Claim {
    Claim {
        queue: queue.into(),
        task: "background_job".into(),
        limit,
        lease: Duration::from_secs(30),
        worker: "test-worker".into(),
        after: None,
    }
}

pub(crate) async fn claim_all(store: &Arc<dyn Store>, queue: &str, limit: u32) -> Vec<Job> {
    store.claim(claim(queue, limit)).await.unwrap()
}

/// A bound on waiting for something that must happen; a failure, never a synchronisation.
pub(crate) async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Captures JSON log lines emitted on this thread while the guard lives.
pub(crate) struct Logs {
    buf: Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct BufWriter(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for BufWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) fn capture_logs() -> Logs {
    let buf = Arc::new(std::sync::Mutex::new(Vec::new()));
    let w = BufWriter(buf.clone());
    let sub =
        tracing_subscriber::fmt().json().with_max_level(tracing::Level::DEBUG).with_writer(move || w.clone()).finish();
    Logs { buf, _guard: tracing::subscriber::set_default(sub) }
}

impl Logs {
    /// Every captured event whose `event` field is `name`, as JSON.
    pub(crate) fn events(&self, name: &str) -> Vec<serde_json::Value> {
        let text = String::from_utf8(self.buf.lock().unwrap().clone()).unwrap();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["fields"]["event"] == name)
            .map(|v| v["fields"].clone())
            .collect()
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.buf.lock().unwrap().clone()).unwrap()
    }
}

/// Runs `sql` (one statement, no parameters) on the test database.
pub(crate) async fn exec(db: &keel_storage::Db, sql: &str) {
    match db {
        keel_storage::Db::Sqlite(p) => sqlx::query(sql).execute(p).await.map(drop),
        keel_storage::Db::Postgres(p) => sqlx::query(sql).execute(p).await.map(drop),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}
