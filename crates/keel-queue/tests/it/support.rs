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
    }
}

pub(crate) async fn claim_all(store: &Arc<dyn Store>, queue: &str, limit: u32) -> Vec<Job> {
    store.claim(claim(queue, limit)).await.unwrap()
}

/// A bound on waiting for something that must happen; a failure, never a synchronisation.
pub(crate) async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
