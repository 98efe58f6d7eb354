//! Everything the handlers share, built once at startup: one line or two per adopted crate.

use crate::cache::NotesCache;
use crate::notes::Notes;
use crate::Settings;
use keel_health::{DatabaseCheck, HealthConfig, HealthService};
use keel_ratelimit::{Limiter, Policy};
use keel_storage::Db;
use keel_telemetry::{route_pipeline, MetricsRegistry, RouteRecorder, RouteWriter, WriterConfig};
use std::sync::{Arc, Mutex};

/// The router's state. Cloning is cheap.
#[derive(Clone)]
pub struct AppState {
    /// The pool, as keel-queue and keel-telemetry take it.
    pub db: Db,
    /// The host's own notes, and the queue its writes enqueue into.
    pub notes: Notes,
    /// Step 1: the notes routes' limiter.
    pub limiter: Arc<dyn Limiter>,
    /// Step 2: what `/ready` runs.
    pub health: HealthService,
    /// Step 3: the cached note list.
    pub cache: NotesCache,
    /// Step 5: the Prometheus registry the timing layer feeds.
    pub metrics: Arc<MetricsRegistry>,
    /// Step 5: the timing layer's buffer (stored in `route_performance_events` by the writer).
    pub recorder: RouteRecorder,
    /// The recorder's writer, taken by [`crate::serve`], which runs it beside the server.
    writer: Arc<Mutex<Option<RouteWriter>>>,
}

impl AppState {
    /// The state over a migrated database (see [`crate::migrate`]).
    pub fn new(db: Db, settings: &Settings) -> anyhow::Result<AppState> {
        // Step 1: an in-process policy, keyed by client network.
        let limiter: Arc<dyn Limiter> = Arc::new(Policy::new("notes", settings.rate_limit).in_process_limiter());
        // Step 2: the database is a required check: if it fails, `/ready` answers 503.
        let database = match &db {
            Db::Postgres(pool) => DatabaseCheck::postgres(pool.clone()),
            Db::Sqlite(pool) => DatabaseCheck::sqlite(pool.clone()),
        };
        let health = HealthService::builder(HealthConfig::default()).check(database).build()?;
        // Step 5: the histogram, plus per-request samples written in batches off the request path.
        let metrics = Arc::new(MetricsRegistry::new());
        let (recorder, writer) = route_pipeline(db.clone(), WriterConfig::default());
        recorder.register_metrics(&metrics)?;
        Ok(AppState {
            notes: Notes::new(&db),
            db,
            limiter,
            health,
            cache: NotesCache::new(),
            metrics,
            recorder,
            writer: Arc::new(Mutex::new(Some(writer))),
        })
    }

    /// The route-timing writer, once.
    pub(crate) fn take_writer(&self) -> Option<RouteWriter> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}
