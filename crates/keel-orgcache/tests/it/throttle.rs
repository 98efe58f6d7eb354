//! Once-per-period work on paused tokio time.

use crate::org;
use keel_orgcache::Throttle;
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn runs_once_per_period_per_org_and_name() {
    let t = Throttle::new(Duration::from_secs(300));
    let (a, b) = (org(), org());
    assert!(t.should_run(a, "managed_alerts"));
    assert!(!t.should_run(a, "managed_alerts"), "a second poll within the period is skipped");
    assert!(t.should_run(b, "managed_alerts"), "another org has its own period");
    assert!(t.should_run(a, "digest"), "another job has its own period");

    tokio::time::advance(Duration::from_secs(299)).await;
    assert!(!t.should_run(a, "managed_alerts"));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(t.should_run(a, "managed_alerts"), "due again after exactly one period");
    assert!(!t.should_run(a, "managed_alerts"));
}

#[tokio::test(start_paused = true)]
async fn forget_lets_a_failed_run_retry_on_the_next_poll() {
    let t = Throttle::new(Duration::from_secs(300));
    let a = org();
    assert!(t.should_run(a, "managed_alerts"));
    t.forget(a, "managed_alerts");
    assert!(t.should_run(a, "managed_alerts"));
}

#[tokio::test(start_paused = true)]
async fn old_entries_are_pruned() {
    let t = Throttle::new(Duration::from_secs(10));
    for _ in 0..1500 {
        assert!(t.should_run(org(), "x"));
    }
    tokio::time::advance(Duration::from_secs(11)).await;
    for _ in 0..1100 {
        assert!(t.should_run(org(), "x"));
    }
    assert!(t.tracked() < 2600, "expired entries were dropped: {}", t.tracked());
}
