//! The standard buckets and their TTL intent, reviewable in one table.

use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// A class of cached data with one freshness rule. Every bucket is partitioned by org.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    /// Services catalog, add-on structure, lead sources, pricing config, tag summaries, schedule
    /// reference data (crews, trucks, pay policies).
    Reference,
    /// Expensive metrics and charts (the dashboard chart RPC per month range).
    Dashboard,
    /// Org settings.
    Settings,
}

impl Bucket {
    pub const ALL: [Bucket; 3] = [Bucket::Reference, Bucket::Dashboard, Bucket::Settings];

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Reference => "reference",
            Bucket::Dashboard => "dashboard",
            Bucket::Settings => "settings",
        }
    }

    /// Parses the lowercase name used in messages and settings.
    pub fn parse(s: &str) -> Option<Bucket> {
        Bucket::ALL.into_iter().find(|b| b.as_str().eq_ignore_ascii_case(s))
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// This bucket's row of [`POLICIES`].
    pub fn policy(self) -> &'static BucketPolicy {
        &POLICIES[self.index()]
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a bucket holds and how long its entries may live; the defaults behind
/// [`crate::CacheConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketPolicy {
    pub bucket: Bucket,
    /// Time to live from insertion. For buckets that are invalidated on write this is only the
    /// backstop for a missed cross-instance notification.
    pub ttl: Duration,
    /// Writes to the underlying data invalidate matching tags (read-your-writes).
    pub invalidated_on_write: bool,
    /// Weighted capacity (approximate bytes, see [`crate::CacheValue`]).
    pub max_weight: u64,
    /// A loader running longer than this fails its callers with `LoadError::TimedOut`.
    pub load_timeout: Duration,
}

const MIB: u64 = 1024 * 1024;

/// The TTL intent of every bucket, in one place. Operators override TTLs with
/// `KEEL_CACHE_TTL_<BUCKET>` and capacities with `KEEL_CACHE_CAPACITY_MB_<BUCKET>`.
pub const POLICIES: [BucketPolicy; 3] = [
    // Short: reference data changes rarely, but a missed cross-instance notification should not
    // hide a catalog edit for long.
    BucketPolicy {
        bucket: Bucket::Reference,
        ttl: Duration::from_secs(60),
        invalidated_on_write: true,
        max_weight: 32 * MIB,
        load_timeout: Duration::from_secs(10),
    },
    // Five minutes per org and range, as the chart RPC is the expensive read; writes to the
    // org's business data invalidate by tag so a total never lags the user's own write.
    BucketPolicy {
        bucket: Bucket::Dashboard,
        ttl: Duration::from_secs(300),
        invalidated_on_write: true,
        max_weight: 64 * MIB,
        load_timeout: Duration::from_secs(30),
    },
    // Longer: settings are read on every request and always invalidated on write.
    BucketPolicy {
        bucket: Bucket::Settings,
        ttl: Duration::from_secs(900),
        invalidated_on_write: true,
        max_weight: 8 * MIB,
        load_timeout: Duration::from_secs(10),
    },
];
