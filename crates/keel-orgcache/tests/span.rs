//! The load span, in a test binary of its own: the test sets the process's global subscriber,
//! which no other test shares. Beside the other tests' threads, a thread-local subscriber was
//! not enough: tracing's process-wide interest cache could still mark the span's callsite
//! "never" while another thread registered it (it failed two CI runs, the second after the
//! test had rebuilt the cache).

use keel_ids::OrgId;
use keel_orgcache::{Bucket, BucketConfig, CacheConfig, OrgCache};
use std::convert::Infallible;
use std::time::Duration;

/// A load runs inside a `cache.load` span: in a trace, the database time of a miss is visible
/// under the request that missed.
#[tokio::test]
async fn a_load_runs_inside_its_own_span() {
    tracing::subscriber::set_global_default(tracing_subscriber::registry()).expect("this binary's only subscriber");
    let dashboard = Bucket::new("dashboard");
    let c = OrgCache::new(
        &CacheConfig::new().with_bucket(dashboard, BucketConfig::new(Duration::from_secs(300), 64 << 20)),
    );
    let seen = std::sync::Mutex::new(None);
    c.get_or_load(OrgId::generate(), dashboard, "chart", &[], || async {
        *seen.lock().unwrap() = tracing::Span::current().metadata().map(|m| m.name());
        Ok::<_, Infallible>(1u64)
    })
    .await
    .unwrap();
    assert_eq!(*seen.lock().unwrap(), Some("cache.load"));
}
