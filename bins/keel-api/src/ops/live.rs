//! Live data shared by every operator watching: the throughput series is queried at most once
//! per interval (the same interval as the shared queue snapshot, `KEEL_METRICS_SNAPSHOT_INTERVAL`),
//! however many tabs refresh; rate-limit counters are sampled at most once per interval while
//! someone watches, giving the "decisions and denials over time" series.

use keel_queue::{MinuteCounts, QueueError};
use keel_storage::Db;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The throughput window the overview charts.
pub(crate) const THROUGHPUT_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Rate-limit samples kept: an hour at the default 15 s interval; older ones are dropped so
/// the buffer never grows with uptime.
const MAX_LIMIT_SAMPLES: usize = 240;

/// One policy's counters at one instant (totals since this process started).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PolicyCounts {
    pub(crate) policy: String,
    pub(crate) allowed: u64,
    pub(crate) denied: u64,
    pub(crate) unavailable: u64,
}

/// Every policy's counters at one instant.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LimitSample {
    pub(crate) at: chrono::DateTime<chrono::Utc>,
    pub(crate) policies: Vec<PolicyCounts>,
}

type Cached = Option<(Instant, Arc<Vec<MinuteCounts>>)>;

struct Inner {
    interval: Duration,
    /// Held across the query: concurrent readers wait for the one refresh instead of doubling it.
    throughput: tokio::sync::Mutex<Cached>,
    throughput_queries: std::sync::atomic::AtomicU64,
    limits: Mutex<(Option<Instant>, VecDeque<LimitSample>)>,
}

/// The operator surfaces' shared live state (cheap to clone).
#[derive(Clone)]
pub(crate) struct OpsLive {
    inner: Arc<Inner>,
}

impl OpsLive {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                interval,
                throughput: tokio::sync::Mutex::new(None),
                throughput_queries: Default::default(),
                limits: Mutex::new((None, VecDeque::new())),
            }),
        }
    }

    /// Finished jobs per minute over the last hour, from at most one query per interval.
    pub(crate) async fn throughput(&self, db: &Db) -> Result<Arc<Vec<MinuteCounts>>, QueueError> {
        let now = chrono::Utc::now();
        self.throughput_from(keel_queue::throughput(db, now - THROUGHPUT_WINDOW, now)).await
    }

    /// The cached series, or `query`'s result when the cache is an interval old (`query` is
    /// not polled otherwise, so it costs nothing).
    async fn throughput_from(
        &self,
        query: impl std::future::Future<Output = Result<Vec<MinuteCounts>, QueueError>>,
    ) -> Result<Arc<Vec<MinuteCounts>>, QueueError> {
        let mut cached = self.inner.throughput.lock().await;
        if let Some((at, v)) = &*cached {
            if at.elapsed() < self.inner.interval {
                return Ok(v.clone());
            }
        }
        self.inner.throughput_queries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let v = Arc::new(query.await?);
        *cached = Some((Instant::now(), v.clone()));
        Ok(v)
    }

    /// How many throughput queries have run (tests hold it to one per interval).
    #[cfg(test)]
    pub(crate) fn throughput_queries(&self) -> u64 {
        self.inner.throughput_queries.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records `now`'s counters if the last sample is an interval old, and returns the series.
    pub(crate) fn sample_limits(&self, now: impl FnOnce() -> Vec<PolicyCounts>) -> Vec<LimitSample> {
        let mut g = self.inner.limits.lock().unwrap_or_else(|p| p.into_inner());
        let due = g.0.is_none_or(|t| t.elapsed() >= self.inner.interval);
        if due {
            g.0 = Some(Instant::now());
            g.1.push_back(LimitSample { at: chrono::Utc::now(), policies: now() });
            while g.1.len() > MAX_LIMIT_SAMPLES {
                g.1.pop_front();
            }
        }
        g.1.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// However many operators refresh at once, the throughput series costs one query per
    /// interval; the next interval queries again. (Paused tokio time: no sleeps.)
    #[tokio::test(start_paused = true)]
    async fn throughput_is_one_query_per_interval_for_every_reader() {
        let live = OpsLive::new(Duration::from_secs(15));
        // A query that takes a while, so concurrent readers really overlap it.
        let query = || async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok(vec![])
        };
        let readers: Vec<_> = (0..20)
            .map(|_| {
                let live = live.clone();
                tokio::spawn(async move { live.throughput_from(query()).await.map(|v| v.len()) })
            })
            .collect();
        for r in readers {
            assert_eq!(r.await.unwrap().unwrap(), 0);
        }
        assert_eq!(live.throughput_queries(), 1);
        tokio::time::advance(Duration::from_secs(14)).await;
        live.throughput_from(query()).await.unwrap();
        assert_eq!(live.throughput_queries(), 1, "still within the interval");
        tokio::time::advance(Duration::from_secs(1)).await;
        live.throughput_from(query()).await.unwrap();
        assert_eq!(live.throughput_queries(), 2, "the next interval refreshes");
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_samples_are_taken_once_per_interval_and_bounded() {
        let live = OpsLive::new(Duration::from_secs(1));
        let counts = |n: u64| vec![PolicyCounts { policy: "p".into(), allowed: n, denied: 0, unavailable: 0 }];
        assert_eq!(live.sample_limits(|| counts(1)).len(), 1);
        assert_eq!(live.sample_limits(|| counts(2)).len(), 1, "within the interval: no new sample");
        for i in 0..(MAX_LIMIT_SAMPLES as u64 + 10) {
            tokio::time::advance(Duration::from_secs(1)).await;
            live.sample_limits(|| counts(i));
        }
        let series = live.sample_limits(|| counts(0));
        assert_eq!(series.len(), MAX_LIMIT_SAMPLES);
        assert_eq!(series.last().unwrap().policies[0].allowed, MAX_LIMIT_SAMPLES as u64 + 9);
    }
}
