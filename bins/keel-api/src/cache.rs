//! Keel's org-cache buckets and their TTL intent, reviewable in one table. keel-orgcache
//! supplies the cache; which buckets exist and how long their entries live are this server's.
//! Operators override TTLs with `KEEL_CACHE_TTL_<BUCKET>`, capacities with
//! `KEEL_CACHE_CAPACITY_MB_<BUCKET>` and every load timeout with `KEEL_CACHE_LOAD_TIMEOUT`.

use keel_config::Reader;
use keel_orgcache::{Bucket, BucketConfig, CacheConfig};
use std::time::Duration;

/// Services catalog, add-on structure, lead sources, pricing config, tag summaries, schedule
/// reference data (crews, trucks, pay policies).
pub(crate) const REFERENCE: Bucket = Bucket::new("reference");
/// Expensive metrics and charts (the dashboard KPIs per month).
pub(crate) const DASHBOARD: Bucket = Bucket::new("dashboard");
/// Org settings.
pub(crate) const SETTINGS: Bucket = Bucket::new("settings");

/// The prefix of the cache override variables.
pub(crate) const ENV_PREFIX: &str = "KEEL_CACHE_";

/// Every bucket with its default settings; all three are invalidated by tag on write, so each
/// TTL is only the backstop for a missed cross-instance notification.
pub(crate) fn defaults() -> CacheConfig {
    CacheConfig::new()
        // Short: reference data changes rarely, but a missed cross-instance notification should
        // not hide a catalog edit for long.
        .with_bucket(REFERENCE, BucketConfig::new(Duration::from_secs(60), 0).with_capacity_mib(32))
        // Five minutes per org and month, as the KPIs are the expensive read; writes to the
        // org's invoices and payments invalidate by tag so a total never lags the user's write.
        .with_bucket(
            DASHBOARD,
            BucketConfig::new(Duration::from_secs(300), 0)
                .with_capacity_mib(64)
                .with_load_timeout(Duration::from_secs(30)),
        )
        // Longer: settings are read on every request and always invalidated on write.
        .with_bucket(SETTINGS, BucketConfig::new(Duration::from_secs(900), 0).with_capacity_mib(8))
}

/// The defaults with the operator's `KEEL_CACHE_*` overrides; bad values are recorded on `r`.
pub(crate) fn read(r: &mut Reader<'_>) -> CacheConfig {
    defaults().read_overrides(r, ENV_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_config::MapSource;

    #[test]
    fn the_buckets_and_their_defaults() {
        let c = defaults();
        let names: Vec<&str> = c.buckets().map(|(b, _)| b.name()).collect();
        assert_eq!(names, ["reference", "dashboard", "settings"]);
        let ttl = |b| c.bucket(b).unwrap().ttl;
        assert_eq!(
            (ttl(REFERENCE), ttl(DASHBOARD), ttl(SETTINGS)),
            (Duration::from_secs(60), Duration::from_secs(300), Duration::from_secs(900))
        );
        assert_eq!(c.bucket(DASHBOARD).unwrap().max_weight, 64 * 1024 * 1024);
        assert_eq!(c.bucket(DASHBOARD).unwrap().load_timeout, Duration::from_secs(30));
        assert_eq!(c.bucket(SETTINGS).unwrap().load_timeout, Duration::from_secs(10));
    }

    #[test]
    fn keel_cache_variables_override_and_typos_are_problems() {
        let src = MapSource::new([
            ("KEEL_CACHE_TTL_DASHBOARD", "5m"),
            ("KEEL_CACHE_TTL_REFERENCE", "30s"),
            ("KEEL_CACHE_CAPACITY_MB_SETTINGS", "2"),
            ("KEEL_CACHE_LOAD_TIMEOUT", "5s"),
        ]);
        let mut r = Reader::new(&src);
        let c = read(&mut r);
        assert!(r.finish().is_ok());
        assert_eq!(c.bucket(REFERENCE).unwrap().ttl, Duration::from_secs(30));
        assert_eq!(c.bucket(SETTINGS).unwrap().max_weight, 2 * 1024 * 1024);
        assert_eq!(c.bucket(DASHBOARD).unwrap().load_timeout, Duration::from_secs(5));

        let src = MapSource::new([("KEEL_CACHE_TTL_DASHBORD", "5m"), ("KEEL_CACHE_TTL_REFERENCE", "2d")]);
        let mut r = Reader::new(&src);
        assert_eq!(read(&mut r), defaults());
        let problems = r.finish().unwrap_err();
        let vars: Vec<&str> = problems.0.iter().map(|p| p.var.as_str()).collect();
        assert_eq!(vars, ["KEEL_CACHE_TTL_REFERENCE", "KEEL_CACHE_TTL_DASHBORD"]);
        assert!(problems.0[1].message.contains("REFERENCE, DASHBOARD, SETTINGS"), "{}", problems.0[1].message);
    }
}
