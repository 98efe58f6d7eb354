//! Shared helpers: a pinned clock, a counting slow check and a log capture.

use chrono::{DateTime, TimeZone, Utc};
use keel_health::{Check, CheckFuture, HealthConfig, HealthService, HealthServiceBuilder};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) fn pinned() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + chrono::Duration::milliseconds(678)
}

pub(crate) fn builder(deadline: Duration) -> HealthServiceBuilder {
    HealthService::builder(HealthConfig::new(deadline)).clock(pinned)
}

pub(crate) const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A required check that sleeps, then passes; counts how many times it started and finished.
pub(crate) struct Sleeper {
    pub(crate) name: &'static str,
    pub(crate) sleep: Duration,
    pub(crate) timeout: Option<Duration>,
    pub(crate) started: Arc<AtomicUsize>,
    pub(crate) finished: Arc<AtomicUsize>,
}

impl Sleeper {
    pub(crate) fn new(name: &'static str, sleep: Duration) -> Self {
        Self { name, sleep, timeout: None, started: Arc::default(), finished: Arc::default() }
    }

    pub(crate) fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
}

impl Check for Sleeper {
    fn name(&self) -> &str {
        self.name
    }
    fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
    fn check(&self, _budget: Duration) -> CheckFuture<'_> {
        Box::pin(async move {
            self.started.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.sleep).await;
            self.finished.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
}

/// Collects formatted log output for assertions on what was logged.
#[derive(Clone, Default)]
pub(crate) struct Capture(pub(crate) Arc<Mutex<Vec<u8>>>);

impl Capture {
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    pub(crate) fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        let this = self.clone();
        tracing_subscriber::fmt().with_ansi(false).with_writer(move || this.clone()).finish()
    }
}

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
