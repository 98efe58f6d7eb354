//! The database-derived queue gauges, in keel-api and keel-worker alike, all read from one
//! [`SharedSnapshot`]: a scrape waits for (or reuses) the snapshot of the current interval,
//! then the gauges read its last good value. However many scrapers there are, the database
//! answers at most one bounded snapshot query per interval.

use keel_queue::{JobState, SharedSnapshot};
use keel_telemetry::metrics::{FamilyDesc, MetricsError, Sample};
use keel_telemetry::MetricsRegistry;
use std::sync::Arc;
use std::time::Duration;

/// How long the snapshot query may run in the database before it is stopped (PostgreSQL
/// `statement_timeout`, SQLite's progress handler). A scrape then answers with the previous
/// values; on a table so large that one second is not enough, the gauges go stale rather than
/// the database slower.
pub const QUEUE_SNAPSHOT_LIMIT: Duration = Duration::from_secs(1);

/// The shared snapshot over `store`, one per `interval` (`KEEL_METRICS_SNAPSHOT_INTERVAL`).
pub fn queue_snapshot(store: Arc<dyn keel_queue::Store>, interval: Duration) -> SharedSnapshot {
    SharedSnapshot::new(store, interval, QUEUE_SNAPSHOT_LIMIT)
}

/// Registers `keel_queue_jobs{state}`, `keel_queue_oldest_pending_age_seconds`,
/// `keel_queue_expired_leases` and `keel_queue_snapshot_timestamp_seconds`, read from the
/// last good snapshot of `snapshot` (none before the first).
pub fn register_queue_gauges(registry: &MetricsRegistry, snapshot: &SharedSnapshot) -> Result<(), MetricsError> {
    let s = snapshot.clone();
    registry.register(
        FamilyDesc::gauge("keel_queue_jobs", "Jobs per state at the last queue snapshot", &["state"])?,
        move || {
            s.last_good()
                .map(|snap| {
                    JobState::ALL.iter().map(|st| Sample::new([st.as_str()], snap.counts.get(*st) as f64)).collect()
                })
                .unwrap_or_default()
        },
    )?;
    type Read = fn(&keel_queue::QueueSnapshot) -> f64;
    let scalars: [(&str, &str, Read); 3] = [
        (
            "keel_queue_oldest_pending_age_seconds",
            "Seconds the longest-waiting runnable job had been due at the last queue snapshot (0 when none waits)",
            |s| s.oldest_pending_age_s,
        ),
        (
            "keel_queue_expired_leases",
            "Jobs still processing whose lease had run out at the last queue snapshot (their worker died or hung)",
            |s| s.expired_leases as f64,
        ),
        (
            "keel_queue_snapshot_timestamp_seconds",
            "When the last good queue snapshot was taken, Unix seconds (the queue gauges are that old)",
            |s| s.taken_at.timestamp_millis() as f64 / 1000.0,
        ),
    ];
    for (name, help, read) in scalars {
        let s = snapshot.clone();
        registry.register(FamilyDesc::gauge(name, help, &[])?, move || {
            s.last_good().map(|snap| vec![Sample::new(Vec::<String>::new(), read(&snap))]).unwrap_or_default()
        })?;
    }
    Ok(())
}

/// Refreshes `snapshot` if this interval has none yet (shared with every concurrent scrape),
/// before the gauges are read. A failure is logged once per refresh (by keel-queue); the
/// gauges keep their last good values.
pub async fn refresh(snapshot: &SharedSnapshot) {
    let _ = snapshot.get().await;
}
