//! The metrics families keel-api exports at `/metrics`, each read from its owner's counters at
//! scrape time (rate limiters, org cache, route telemetry buffer, database pool, the shared
//! queue snapshot), plus the embedded worker's job families.

use crate::state::Limits;
use keel_orgcache::OrgCache;
use keel_telemetry::metrics::{FamilyDesc, Sample};
use keel_telemetry::{MetricsRegistry, RouteRecorder};
use std::sync::Arc;

/// Registration only fails on a bad metric name, which is fixed in this file: a test renders
/// and parses every family, so a failure here is a programming error caught before release.
fn reg(
    m: &MetricsRegistry,
    desc: Result<FamilyDesc, keel_telemetry::metrics::MetricsError>,
    f: impl Fn() -> Vec<Sample> + Send + Sync + 'static,
) {
    match desc.and_then(|d| m.register(d, f)) {
        Ok(()) => {}
        Err(e) => tracing::error!(error = %e, "metric family not registered"),
    }
}

pub(crate) fn register(
    m: &MetricsRegistry,
    limits: &Arc<Limits>,
    cache: &OrgCache,
    recorder: &RouteRecorder,
    db: &keel_storage::Db,
    snapshot: &keel_queue::SharedSnapshot,
) -> Arc<keel_worker::JobMetrics> {
    let all = {
        let l = limits.clone();
        move || {
            [&l.admin_api, &l.public_ingress, &l.telemetry_ingest]
                .map(|x| x.metrics())
                .into_iter()
                .chain([l.password_recovery.metrics(), l.sign_in_failures.metrics()])
                .collect::<Vec<_>>()
        }
    };
    let a = all.clone();
    reg(
        m,
        FamilyDesc::counter("keel_ratelimit_allowed_total", "Requests a rate-limit policy admitted", &["policy"]),
        move || a().into_iter().map(|x| Sample::new([x.policy], x.allowed as f64)).collect(),
    );
    let a = all.clone();
    reg(
        m,
        FamilyDesc::counter("keel_ratelimit_rejected_total", "Requests a rate-limit policy refused (429)", &["policy"]),
        move || a().into_iter().map(|x| Sample::new([x.policy], x.rejected as f64)).collect(),
    );
    let a = all.clone();
    reg(
        m,
        FamilyDesc::counter("keel_ratelimit_unavailable_total", "Checks with no decision in time (503)", &["policy"]),
        move || a().into_iter().map(|x| Sample::new([x.policy], x.unavailable as f64)).collect(),
    );
    let l = limits.clone();
    reg(
        m,
        FamilyDesc::counter(
            "keel_sign_in_lockouts_total",
            "Failed sign-ins that used an account's last attempt (policy sign_in_failures)",
            &[],
        ),
        move || vec![Sample::new(std::iter::empty::<String>(), l.sign_in_failures.lockouts() as f64)],
    );
    let a = all;
    reg(m, FamilyDesc::gauge("keel_ratelimit_keys", "Keys tracked by an in-process limiter", &["policy"]), move || {
        a().into_iter().filter_map(|x| x.keys.map(|k| Sample::new([x.policy], k as f64))).collect()
    });
    let c = cache.clone();
    reg(m, FamilyDesc::counter("keel_cache_hits_total", "Org cache hits", &["bucket"]), move || {
        c.stats().buckets.iter().map(|b| Sample::new([b.bucket.name()], b.hits as f64)).collect()
    });
    let c = cache.clone();
    reg(m, FamilyDesc::counter("keel_cache_misses_total", "Org cache misses", &["bucket"]), move || {
        c.stats().buckets.iter().map(|b| Sample::new([b.bucket.name()], b.misses as f64)).collect()
    });
    let c = cache.clone();
    reg(m, FamilyDesc::counter("keel_cache_loads_total", "Org cache loader runs", &["bucket"]), move || {
        c.stats().buckets.iter().map(|b| Sample::new([b.bucket.name()], b.loads as f64)).collect()
    });
    let c = cache.clone();
    reg(m, FamilyDesc::gauge("keel_cache_entries", "Org cache entries", &["bucket"]), move || {
        c.stats().buckets.iter().map(|b| Sample::new([b.bucket.name()], b.entries as f64)).collect()
    });
    if let Err(e) = recorder.register_metrics(m) {
        tracing::error!(error = %e, "route telemetry metrics not registered");
    }
    if let Err(e) = keel_telemetry::metrics::register_pool_metrics(m, db) {
        tracing::error!(error = %e, "database pool metrics not registered");
    }
    if let Err(e) = keel_worker::metrics::register_queue_gauges(m, snapshot) {
        tracing::error!(error = %e, "queue gauges not registered");
    }
    // The same names as the standalone worker's, so dashboards read both alike. Registration
    // fails only on a bad name fixed in keel-worker (its tests register them too); the
    // fallback registry keeps the observer working, unexported.
    keel_worker::JobMetrics::register(m).unwrap_or_else(|e| {
        tracing::error!(error = %e, "job metrics not registered");
        keel_worker::JobMetrics::register(&MetricsRegistry::new()).unwrap_or_else(|e| unreachable!("{e}"))
    })
}
