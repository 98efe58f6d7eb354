//! Scrape pacing for a metrics listener: encodes run one at a time, at least
//! [`MIN_SCRAPE_SPACING`] apart, so a scrape storm waits instead of taking the CPU that the API
//! and the jobs share with it.

use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The least time between two scrapes of one listener. Prometheus scrapes a target every 15 s
/// or so: 20 scrapes a second leaves room for hundreds of scrapers. A client scraping back to
/// back (the storm of issue 15.5: eight of them made ~9,000 scrapes a second, each an HTTP
/// exchange and a full encode) is held here, parked at no CPU cost, so the API's latency on the
/// same two cores stays where it was. Waiting scrapers hold a connection each, which the
/// listener's connection cap bounds.
pub const MIN_SCRAPE_SPACING: Duration = Duration::from_millis(50);

/// Serialises and spaces the scrapes of one listener (first come, first served: tokio's mutex
/// is fair).
#[derive(Debug)]
pub struct ScrapePacer {
    spacing: Duration,
    next: Mutex<Option<Instant>>,
}

impl Default for ScrapePacer {
    fn default() -> Self {
        Self::new(MIN_SCRAPE_SPACING)
    }
}

impl ScrapePacer {
    /// A pacer letting one scrape start per `spacing`.
    pub fn new(spacing: Duration) -> Self {
        ScrapePacer { spacing, next: Mutex::new(None) }
    }

    /// Waits for this scrape's turn, then runs `scrape`; the next one may start `spacing` after
    /// this one started (an encode slower than that delays it no further).
    pub async fn run<T>(&self, scrape: impl std::future::Future<Output = T>) -> T {
        let mut next = self.next.lock().await;
        if let Some(at) = *next {
            tokio::time::sleep_until(at).await;
        }
        *next = Some(Instant::now() + self.spacing);
        scrape.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn concurrent_scrapes_start_one_spacing_apart_in_arrival_order() {
        let pacer = Arc::new(ScrapePacer::new(Duration::from_millis(50)));
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..4u64 {
            let p = pacer.clone();
            tasks.push(tokio::spawn(async move { p.run(async move { (i, Instant::now() - t0) }).await }));
            // Each task reaches the lock before the next is spawned: arrival order is i.
            tokio::task::yield_now().await;
        }
        let mut started = Vec::new();
        for t in tasks {
            started.push(t.await.unwrap());
        }
        let ms: Vec<(u64, u128)> = started.iter().map(|(i, d)| (*i, d.as_millis())).collect();
        assert_eq!(ms, vec![(0, 0), (1, 50), (2, 100), (3, 150)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_scrape_after_a_quiet_spell_does_not_wait() {
        let pacer = ScrapePacer::new(Duration::from_millis(50));
        pacer.run(async {}).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = Instant::now();
        pacer.run(async {}).await;
        assert_eq!(t.elapsed(), Duration::ZERO);
    }
}
