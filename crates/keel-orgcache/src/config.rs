//! Per-bucket settings (`KEEL_CACHE_TTL_<BUCKET>`, `KEEL_CACHE_CAPACITY_MB_<BUCKET>`), read
//! through `keel_config::Reader` so every problem is reported with the others.

use crate::bucket::{Bucket, POLICIES};
use keel_config::Reader;
use std::time::Duration;

/// The longest TTL accepted: a cache is not a store, and a typo such as `5d` for `5m` should be
/// caught rather than served for a week.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

const TTL_PREFIX: &str = "KEEL_CACHE_TTL_";
const CAPACITY_PREFIX: &str = "KEEL_CACHE_CAPACITY_MB_";
const LOAD_TIMEOUT_VAR: &str = "KEEL_CACHE_LOAD_TIMEOUT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketConfig {
    pub ttl: Duration,
    /// Weighted capacity in approximate bytes.
    pub max_weight: u64,
    pub load_timeout: Duration,
}

/// Settings for every bucket; `Default` is the [`POLICIES`] table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    buckets: [BucketConfig; 3],
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            buckets: POLICIES.map(|p| BucketConfig {
                ttl: p.ttl,
                max_weight: p.max_weight,
                load_timeout: p.load_timeout,
            }),
        }
    }
}

impl CacheConfig {
    pub fn bucket(&self, bucket: Bucket) -> &BucketConfig {
        &self.buckets[bucket.index()]
    }

    pub fn set(mut self, bucket: Bucket, config: BucketConfig) -> Self {
        self.buckets[bucket.index()] = config;
        self
    }

    pub fn with_ttl(mut self, bucket: Bucket, ttl: Duration) -> Self {
        self.buckets[bucket.index()].ttl = ttl;
        self
    }

    pub fn with_max_weight(mut self, bucket: Bucket, max_weight: u64) -> Self {
        self.buckets[bucket.index()].max_weight = max_weight;
        self
    }

    pub fn with_load_timeout(mut self, timeout: Duration) -> Self {
        for b in &mut self.buckets {
            b.load_timeout = timeout;
        }
        self
    }

    /// Reads `KEEL_CACHE_TTL_<BUCKET>` (e.g. `KEEL_CACHE_TTL_DASHBOARD=5m`),
    /// `KEEL_CACHE_CAPACITY_MB_<BUCKET>` and `KEEL_CACHE_LOAD_TIMEOUT`; bad values and unknown
    /// bucket names are recorded on the reader and the default is kept.
    pub fn from_reader(r: &mut Reader<'_>) -> CacheConfig {
        let mut cfg = CacheConfig::default();
        for bucket in Bucket::ALL {
            let name = bucket.as_str().to_ascii_uppercase();
            let default = cfg.buckets[bucket.index()];
            let ttl_var = format!("{TTL_PREFIX}{name}");
            let ttl = r.duration(&ttl_var, default.ttl);
            cfg.buckets[bucket.index()].ttl = if ttl.is_zero() || ttl > MAX_TTL {
                r.problem(&ttl_var, format!("must be from 1ms to 24h, got {ttl:?}; the default is {:?}", default.ttl));
                default.ttl
            } else {
                ttl
            };
            let cap_var = format!("{CAPACITY_PREFIX}{name}");
            let mb = r.int_in(&cap_var, default.max_weight / (1024 * 1024), 1, 64 * 1024);
            cfg.buckets[bucket.index()].max_weight = mb * 1024 * 1024;
        }
        let timeout = r.duration(LOAD_TIMEOUT_VAR, Duration::ZERO);
        if !timeout.is_zero() {
            if timeout > Duration::from_secs(600) {
                r.problem(LOAD_TIMEOUT_VAR, format!("must be at most 10m, got {timeout:?}"));
            } else {
                cfg = cfg.with_load_timeout(timeout);
            }
        }
        // A misspelt bucket would otherwise be silently ignored and the default TTL served.
        let known: Vec<String> = Bucket::ALL.iter().map(|b| b.as_str().to_ascii_uppercase()).collect();
        let mut keys = r.source().keys();
        keys.sort();
        for key in keys {
            for prefix in [TTL_PREFIX, CAPACITY_PREFIX] {
                if let Some(name) = key.strip_prefix(prefix) {
                    if !known.iter().any(|k| k == name) {
                        r.problem(&key, format!("names no cache bucket; the buckets are {}", known.join(", ")));
                    }
                }
            }
        }
        cfg
    }
}
