//! The state every handler shares, built once at startup.

use crate::auth::{IdentityCache, SessionSigner};
use crate::Config;
use keel_health::{DatabaseCheck, HealthService};
use keel_ratelimit::Limiter;
use keel_storage::Db;
use keel_tenancy::Tenancy;
use std::sync::Arc;

/// The limiters of the rate-limit policies, built from their (possibly overridden) settings.
pub struct Limits {
    /// `admin_api`: the in-process floor for every `/api/admin/*` route.
    pub admin_api: Arc<dyn Limiter>,
    /// `public_ingress`: shared through the database, for unauthenticated surfaces.
    pub public_ingress: Arc<dyn Limiter>,
    /// `password_recovery`: keyed by normalised email address, shared through the database
    /// so several instances do not multiply the allowance.
    pub password_recovery: Arc<dyn Limiter>,
    /// `telemetry_ingest`: in process, no database round trip before the write.
    pub telemetry_ingest: Arc<dyn Limiter>,
    /// `sign_in_failures`: failed sign-ins per account address, shared through the database.
    pub sign_in_failures: Arc<crate::auth::SignInThrottle>,
    /// `operator_console`: in process, for `/console` and `/api/ops/*`.
    pub operator_console: Arc<dyn Limiter>,
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub health: HealthService,
    pub tenancy: Tenancy,
    pub limits: Arc<Limits>,
    pub cache: keel_orgcache::OrgCache,
    /// Where reports read their rows; tests wrap it to fail a page mid-report.
    pub reports: Arc<dyn crate::reports::ReportSource>,
    pub report_page_size: usize,
    pub metrics: Arc<keel_telemetry::MetricsRegistry>,
    /// The job queue, and the dispatcher that honours `<KIND>_QUEUE_DISABLED` (run inline).
    pub queue: Arc<dyn keel_queue::Store>,
    /// The queue snapshot behind the queue gauges and health's `queue` section: at most one
    /// bounded query per `KEEL_METRICS_SNAPSHOT_INTERVAL`, however many scrapes and probes.
    pub queue_snapshot: keel_queue::SharedSnapshot,
    /// The embedded worker's job families (`keel_job_*`), fed through its observer.
    pub job_metrics: Arc<keel_worker::JobMetrics>,
    pub dispatcher: keel_queue::Dispatcher,
    pub recorder: keel_telemetry::RouteRecorder,
    /// The batch writer behind `recorder`, started by `serve` (which also flushes it at the end).
    pub(crate) writer: Arc<std::sync::Mutex<Option<keel_telemetry::RouteWriter>>>,
    pub(crate) session_signer: SessionSigner,
    pub(crate) identities: IdentityCache,
    /// When the database last refused a write; the health check reads it.
    pub write_health: Arc<crate::WriteHealth>,
    /// The operator surfaces' shared live data (throughput, rate-limit samples), refreshed at
    /// most once per `KEEL_METRICS_SNAPSHOT_INTERVAL` like the queue snapshot.
    pub(crate) ops: crate::ops::OpsLive,
}

impl AppState {
    pub fn new(db: Db, config: Config) -> Self {
        let write_health = Arc::new(crate::WriteHealth::default());
        let database = match &db {
            Db::Postgres(pool) => DatabaseCheck::postgres(pool.clone()),
            Db::Sqlite(pool) => DatabaseCheck::sqlite(pool.clone()),
        };
        let database = crate::write_health::WriteAwareCheck::new(database, write_health.clone());
        let health = HealthService::builder(config.health).check(database);
        let p = &config.rate_limits;
        let limits = Limits {
            // Each policy builds the backend it declares (in process or shared).
            admin_api: p.admin_api.limiter(&db),
            public_ingress: p.public_ingress.limiter(&db),
            password_recovery: p.password_recovery.limiter(&db),
            telemetry_ingest: p.telemetry_ingest.limiter(&db),
            sign_in_failures: Arc::new(crate::auth::SignInThrottle::new(&db, &p.sign_in_failures)),
            operator_console: p.operator_console.limiter(&db),
        };
        let (recorder, writer) = keel_telemetry::route_pipeline(
            db.clone(),
            keel_telemetry::WriterConfig { max_routes: config.telemetry.max_routes, ..Default::default() },
        );
        let secure = config.settings.is_production();
        let signer = SessionSigner::new(config.settings.internal_api_secret.as_ref().map(|s| s.expose()), secure);
        let cache = keel_orgcache::OrgCache::new(&config.cache);
        // Seals sensitive jobs (forgot-password's address, emails) with the configured keys;
        // `server::run` resolves the development key file before building the state.
        let queue_options = keel_queue::StoreOptions { keyring: config.worker.keyring.clone(), ..Default::default() };
        let queue = keel_queue::open_with(db.clone(), Arc::new(keel_queue::SystemClock), queue_options);
        // The built-in registry only fails on a bad KEEL_SMTP_URL, which configuration loading
        // already rejected; an empty registry then still queues (the worker reports the error).
        let registry = keel_worker::builtin_registry(&config.worker, Some(db.clone())).unwrap_or_default();
        let dispatcher = keel_queue::Dispatcher::new(queue.clone(), registry, config.switches.clone());
        let limits = Arc::new(limits);
        let config_interval = config.worker.metrics_snapshot_interval;
        let metrics = Arc::new(keel_telemetry::MetricsRegistry::new());
        let queue_snapshot =
            keel_worker::metrics::queue_snapshot(queue.clone(), config.worker.metrics_snapshot_interval);
        let job_metrics = crate::observe::register(&metrics, &limits, &cache, &recorder, &db, &queue_snapshot);
        let health = crate::routes::with_queue_section(health, queue_snapshot.clone());
        Self {
            cache,
            queue,
            queue_snapshot,
            job_metrics,
            dispatcher,
            metrics,
            recorder,
            writer: Arc::new(std::sync::Mutex::new(Some(writer))),
            reports: Arc::new(crate::reports::DbReportSource(db.clone())),
            report_page_size: crate::reports::REPORT_PAGE_SIZE,
            tenancy: Tenancy::new(db.clone()),
            db,
            config: Arc::new(config),
            health,
            limits,
            session_signer: signer,
            identities: IdentityCache::new(),
            write_health,
            ops: crate::ops::OpsLive::new(config_interval),
        }
    }
}
