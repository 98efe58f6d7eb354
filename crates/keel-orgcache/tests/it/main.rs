//! Integration tests of the public API: isolation, single flight, tags, generations, the
//! buses, throttle and change filter.

/// The components every test database of this binary has installed (the cache stores nothing).
const SCHEMAS: &[&keel_storage::Schema] = &[];

mod bus;
mod change;
mod flight;
mod isolation;
mod pg;
mod race;
mod stats;
mod tags;
mod throttle;

use keel_ids::OrgId;
use keel_orgcache::{Bucket, BucketConfig, CacheConfig, OrgCache, Tag};
use std::time::Duration;

/// The buckets these tests use; any service defines its own the same way.
pub(crate) const REFERENCE: Bucket = Bucket::new("reference");
pub(crate) const DASHBOARD: Bucket = Bucket::new("dashboard");
pub(crate) const SETTINGS: Bucket = Bucket::new("settings");

pub(crate) fn config() -> CacheConfig {
    CacheConfig::new()
        .with_bucket(REFERENCE, BucketConfig::new(Duration::from_secs(60), 32 << 20))
        .with_bucket(
            DASHBOARD,
            BucketConfig::new(Duration::from_secs(300), 64 << 20).with_load_timeout(Duration::from_secs(30)),
        )
        .with_bucket(SETTINGS, BucketConfig::new(Duration::from_secs(900), 8 << 20))
}

pub(crate) fn cache() -> OrgCache {
    OrgCache::new(&config())
}

pub(crate) fn org() -> OrgId {
    OrgId::generate()
}

pub(crate) fn tag(s: &str) -> Tag {
    Tag::new(s).unwrap()
}

/// A loader error type for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DbDown(pub(crate) &'static str);

impl std::fmt::Display for DbDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "db down: {}", self.0)
    }
}

/// Holds loaders until the test opens it, and lets the test wait until N loaders are inside:
/// event-driven interleaving, no sleeps.
pub(crate) struct Gate {
    entered: tokio::sync::watch::Sender<usize>,
    open: tokio::sync::watch::Sender<bool>,
}

impl Gate {
    pub(crate) fn new() -> Gate {
        Gate { entered: tokio::sync::watch::channel(0).0, open: tokio::sync::watch::channel(false).0 }
    }

    /// Called by a loader: counts itself in, then waits for `open`.
    pub(crate) async fn pass(&self) {
        self.entered.send_modify(|n| *n += 1);
        let mut rx = self.open.subscribe();
        let _ = rx.wait_for(|o| *o).await;
    }

    pub(crate) async fn wait_entered(&self, n: usize) {
        let mut rx = self.entered.subscribe();
        let _ = rx.wait_for(|e| *e >= n).await;
    }

    pub(crate) fn open(&self) {
        self.open.send_replace(true);
    }
}
