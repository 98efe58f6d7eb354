//! The cache's buckets and their settings, and overrides read through `keel_config::Reader` so
//! every problem is reported with the others.

use crate::bucket::Bucket;
use keel_config::Reader;
use std::time::Duration;

/// The longest TTL accepted: a cache is not a store, and a typo such as `5d` for `5m` should be
/// caught rather than served for a week.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// A loader running longer than this fails its callers unless the bucket says otherwise.
pub const DEFAULT_LOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest load timeout an override may set.
const MAX_LOAD_TIMEOUT: Duration = Duration::from_secs(600);

const MIB: u64 = 1024 * 1024;

/// One bucket's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketConfig {
    /// Time to live from insertion. For buckets that are invalidated on write this is only the
    /// backstop for a missed cross-instance notification.
    pub ttl: Duration,
    /// Weighted capacity in approximate bytes (see [`crate::CacheValue::weight`]).
    pub max_weight: u64,
    /// A loader running longer than this fails its callers with `LoadError::TimedOut`.
    pub load_timeout: Duration,
}

impl BucketConfig {
    /// Entries live `ttl` and the bucket holds about `max_weight` bytes; loads time out after
    /// [`DEFAULT_LOAD_TIMEOUT`].
    pub const fn new(ttl: Duration, max_weight: u64) -> Self {
        Self { ttl, max_weight, load_timeout: DEFAULT_LOAD_TIMEOUT }
    }

    /// The same settings with a capacity of `mib` mebibytes.
    pub const fn with_capacity_mib(mut self, mib: u64) -> Self {
        self.max_weight = mib.saturating_mul(MIB);
        self
    }

    /// The same settings with another load timeout.
    pub const fn with_load_timeout(mut self, timeout: Duration) -> Self {
        self.load_timeout = timeout;
        self
    }
}

/// The buckets of one cache and their settings, in the order they were added.
///
/// ```
/// use keel_orgcache::{Bucket, BucketConfig, CacheConfig};
/// use std::time::Duration;
///
/// const PRICES: Bucket = Bucket::new("prices");
/// let config = CacheConfig::new().with_bucket(PRICES, BucketConfig::new(Duration::from_secs(60), 8 << 20));
/// assert_eq!(config.bucket(PRICES).map(|b| b.ttl), Some(Duration::from_secs(60)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheConfig {
    buckets: Vec<(Bucket, BucketConfig)>,
}

impl CacheConfig {
    /// A configuration with no bucket yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `bucket` with `config`, or replaces its settings if it is already there.
    pub fn with_bucket(mut self, bucket: Bucket, config: BucketConfig) -> Self {
        match self.buckets.iter_mut().find(|(b, _)| *b == bucket) {
            Some(slot) => slot.1 = config,
            None => self.buckets.push((bucket, config)),
        }
        self
    }

    /// The settings of `bucket`, if it is configured.
    pub fn bucket(&self, bucket: Bucket) -> Option<&BucketConfig> {
        self.buckets.iter().find(|(b, _)| *b == bucket).map(|(_, c)| c)
    }

    /// Every bucket with its settings, in the order added.
    pub fn buckets(&self) -> impl Iterator<Item = (Bucket, &BucketConfig)> + '_ {
        self.buckets.iter().map(|(b, c)| (*b, c))
    }

    fn update(mut self, bucket: Bucket, f: impl FnOnce(&mut BucketConfig)) -> Self {
        if let Some((_, c)) = self.buckets.iter_mut().find(|(b, _)| *b == bucket) {
            f(c);
        }
        self
    }

    /// Sets the TTL of `bucket` (no effect on a bucket not configured).
    pub fn with_ttl(self, bucket: Bucket, ttl: Duration) -> Self {
        self.update(bucket, |c| c.ttl = ttl)
    }

    /// Sets the capacity of `bucket` in approximate bytes (no effect on a bucket not configured).
    pub fn with_max_weight(self, bucket: Bucket, max_weight: u64) -> Self {
        self.update(bucket, |c| c.max_weight = max_weight)
    }

    /// Sets the load timeout of every bucket.
    pub fn with_load_timeout(mut self, timeout: Duration) -> Self {
        for (_, c) in &mut self.buckets {
            c.load_timeout = timeout;
        }
        self
    }

    /// Applies operator overrides named after `prefix`, for every configured bucket:
    /// `<prefix>TTL_<BUCKET>` (a duration, 1ms to 24h, e.g. `5m`),
    /// `<prefix>CAPACITY_MB_<BUCKET>` (whole mebibytes, 1 to 65536) and `<prefix>LOAD_TIMEOUT`
    /// (every bucket, at most 10m), with the bucket name upper-cased. Keel's prefix is
    /// `KEEL_CACHE_`, giving `KEEL_CACHE_TTL_DASHBOARD=5m`. A bad value is recorded on the
    /// reader and the configured value kept; so is a variable with the prefix naming no bucket,
    /// since a misspelt bucket would otherwise be silently ignored.
    pub fn read_overrides(mut self, r: &mut Reader<'_>, prefix: &str) -> Self {
        let ttl_prefix = format!("{prefix}TTL_");
        let capacity_prefix = format!("{prefix}CAPACITY_MB_");
        let load_timeout_var = format!("{prefix}LOAD_TIMEOUT");
        for (bucket, cfg) in &mut self.buckets {
            let name = bucket.name().to_ascii_uppercase();
            let ttl_var = format!("{ttl_prefix}{name}");
            let ttl = r.duration(&ttl_var, cfg.ttl);
            if ttl.is_zero() || ttl > MAX_TTL {
                r.problem(&ttl_var, format!("must be from 1ms to 24h, got {ttl:?}; the default is {:?}", cfg.ttl));
            } else {
                cfg.ttl = ttl;
            }
            let cap_var = format!("{capacity_prefix}{name}");
            let mb = r.int_in(&cap_var, cfg.max_weight / MIB, 1, 64 * 1024);
            cfg.max_weight = mb * MIB;
        }
        let timeout = r.duration(&load_timeout_var, Duration::ZERO);
        if !timeout.is_zero() {
            if timeout > MAX_LOAD_TIMEOUT {
                r.problem(&load_timeout_var, format!("must be at most 10m, got {timeout:?}"));
            } else {
                self = self.with_load_timeout(timeout);
            }
        }
        let known: Vec<String> = self.buckets.iter().map(|(b, _)| b.name().to_ascii_uppercase()).collect();
        let mut keys = r.source().keys();
        keys.sort();
        for key in keys {
            for p in [&ttl_prefix, &capacity_prefix] {
                if let Some(name) = key.strip_prefix(p.as_str()) {
                    if !known.iter().any(|k| k == name) {
                        r.problem(&key, format!("names no cache bucket; the buckets are {}", known.join(", ")));
                    }
                }
            }
        }
        self
    }
}
