//! The bounded sample buffer between the request path and the database, and its batch writer.
//!
//! The request path calls [`RouteRecorder::record`], which takes a short mutex, appends and
//! returns; it never waits for the database. When the buffer is full the sample is dropped and
//! counted. [`RouteWriter::run`] drains the buffer into `route_performance_events` in batches,
//! every `flush_interval` or as soon as a batch is ready, and a last time on shutdown.

use crate::metrics::{FamilyDesc, MetricsError, MetricsRegistry, Sample};
use crate::{cap_browser_routes, insert_samples, RouteSample};
use keel_storage::Db;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Sizing of the sample buffer and its writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterConfig {
    /// Samples held in memory at most; more are dropped and counted.
    pub capacity: usize,
    /// Rows per insert statement; reaching it wakes the writer early.
    pub batch_size: usize,
    /// Longest a sample waits in the buffer under light traffic.
    pub flush_interval: Duration,
    /// Distinct browser routes kept per UTC day (`ROUTE_TELEMETRY_MAX_ROUTES`); samples of
    /// later routes are stored under `other` (see [`crate::cap_browser_routes`]).
    pub max_routes: u32,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            capacity: 50_000,
            batch_size: 1_000,
            flush_interval: Duration::from_secs(1),
            max_routes: crate::DEFAULT_MAX_ROUTES,
        }
    }
}

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecorderStats {
    /// Samples accepted into the buffer.
    pub recorded: u64,
    /// Samples refused because the buffer was full or the writer had stopped.
    pub dropped: u64,
    /// Rows inserted.
    pub written: u64,
    /// Insert statements that failed.
    pub write_errors: u64,
    /// Samples lost with failed inserts.
    pub lost: u64,
    /// Samples waiting in the buffer now.
    pub buffered: u64,
}

struct Queue {
    samples: Vec<RouteSample>,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    capacity: usize,
    batch_size: usize,
    ready: Notify,
    recorded: AtomicU64,
    dropped: AtomicU64,
    written: AtomicU64,
    write_errors: AtomicU64,
    lost: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The request-path handle; cheap to clone.
#[derive(Clone)]
pub struct RouteRecorder(Arc<Shared>);

/// The background half; run it once with [`RouteWriter::run`].
pub struct RouteWriter {
    shared: Arc<Shared>,
    db: Db,
    flush_interval: Duration,
    max_routes: u32,
}

/// A recorder and its writer over `db`. Spawn `writer.run(shutdown)` and await it after
/// cancelling `shutdown`, once the server has stopped taking requests, so the last samples are
/// written.
pub fn route_pipeline(db: Db, config: WriterConfig) -> (RouteRecorder, RouteWriter) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue { samples: Vec::new(), closed: false }),
        capacity: config.capacity.max(1),
        batch_size: config.batch_size.max(1),
        ready: Notify::new(),
        recorded: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        written: AtomicU64::new(0),
        write_errors: AtomicU64::new(0),
        lost: AtomicU64::new(0),
    });
    let writer = RouteWriter {
        shared: Arc::clone(&shared),
        db,
        flush_interval: config.flush_interval,
        max_routes: config.max_routes,
    };
    (RouteRecorder(shared), writer)
}

impl RouteRecorder {
    /// Buffers one sample without waiting. Returns false (and counts a drop) when the buffer is
    /// full or the writer has stopped.
    pub fn record(&self, sample: RouteSample) -> bool {
        self.push(1, |q| q.push(sample))
    }

    /// Buffers every sample or none (an ingest batch is never half-recorded). Returns false and
    /// counts them all as dropped when they do not all fit.
    pub fn record_all(&self, samples: Vec<RouteSample>) -> bool {
        self.push(samples.len(), |q| q.extend(samples))
    }

    fn push(&self, n: usize, append: impl FnOnce(&mut Vec<RouteSample>)) -> bool {
        let s = &self.0;
        let wake = {
            let mut q = s.lock();
            if q.closed || q.samples.len() + n > s.capacity {
                drop(q);
                s.dropped.fetch_add(n as u64, Ordering::Relaxed);
                return false;
            }
            let before = q.samples.len();
            append(&mut q.samples);
            before < s.batch_size && q.samples.len() >= s.batch_size
        };
        s.recorded.fetch_add(n as u64, Ordering::Relaxed);
        if wake {
            s.ready.notify_one();
        }
        true
    }

    /// The counters now (recorded, dropped, written, …), for metrics and tests.
    pub fn stats(&self) -> RecorderStats {
        let s = &self.0;
        RecorderStats {
            recorded: s.recorded.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            written: s.written.load(Ordering::Relaxed),
            write_errors: s.write_errors.load(Ordering::Relaxed),
            lost: s.lost.load(Ordering::Relaxed),
            buffered: s.lock().samples.len() as u64,
        }
    }

    /// Adds the recorder's counters to `registry` as `keel_telemetry_route_samples_*`.
    pub fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError> {
        type Read = fn(&RecorderStats) -> u64;
        let counters: [(&str, &str, Read); 5] = [
            ("keel_telemetry_route_samples_recorded_total", "Route timing samples accepted into the buffer.", |s| {
                s.recorded
            }),
            (
                "keel_telemetry_route_samples_dropped_total",
                "Route timing samples dropped because the buffer was full or the writer had stopped.",
                |s| s.dropped,
            ),
            ("keel_telemetry_route_samples_written_total", "Route timing samples written to the database.", |s| {
                s.written
            }),
            ("keel_telemetry_route_sample_write_errors_total", "Failed route timing insert statements.", |s| {
                s.write_errors
            }),
            ("keel_telemetry_route_samples_lost_total", "Route timing samples lost with failed inserts.", |s| s.lost),
        ];
        for (name, help, f) in counters {
            let me = self.clone();
            registry.register(FamilyDesc::counter(name, help, &[])?, move || {
                vec![Sample::new(Vec::<String>::new(), f(&me.stats()) as f64)]
            })?;
        }
        let me = self.clone();
        registry.register(
            FamilyDesc::gauge(
                "keel_telemetry_route_samples_buffered",
                "Route timing samples waiting to be written.",
                &[],
            )?,
            move || vec![Sample::new(Vec::<String>::new(), me.stats().buffered as f64)],
        )
    }
}

impl RouteWriter {
    /// Writes batches until `shutdown` is cancelled, then closes the buffer, writes what is
    /// left and returns the final counters. Write failures are counted and logged, never
    /// retried: telemetry must not pile up behind a struggling database.
    pub async fn run(self, shutdown: CancellationToken) -> RecorderStats {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + self.flush_interval, self.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = self.shared.ready.notified() => {}
                _ = tick.tick() => {}
            }
            // The fresh buffer is allocated here, not by the request path growing an empty one.
            let fresh = Vec::with_capacity(self.shared.batch_size);
            let batch = std::mem::replace(&mut self.shared.lock().samples, fresh);
            self.write(batch).await;
        }
        let rest = {
            let mut q = self.shared.lock();
            q.closed = true;
            std::mem::take(&mut q.samples)
        };
        self.write(rest).await;
        RouteRecorder(Arc::clone(&self.shared)).stats()
    }

    async fn write(&self, mut batch: Vec<RouteSample>) {
        let s = &self.shared;
        for chunk in batch.chunks_mut(s.batch_size) {
            // Failing to check the bound must not let unchecked routes in: the chunk is lost
            // and counted like a failed insert.
            let capped = cap_browser_routes(&self.db, chunk, self.max_routes).await;
            let stored = match capped {
                Ok(_) => insert_samples(&self.db, chunk).await,
                Err(e) => Err(e),
            };
            match stored {
                Ok(n) => {
                    s.written.fetch_add(n, Ordering::Relaxed);
                }
                Err(e) => {
                    s.write_errors.fetch_add(1, Ordering::Relaxed);
                    s.lost.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    tracing::warn!(error = %e, samples = chunk.len(), "route timing batch not written");
                }
            }
        }
    }
}
