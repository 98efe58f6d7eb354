//! keel-orgcache: a tenant-isolated read cache on moka that never serves another org's data or
//! a value older than the last invalidation.
//!
//! - [`OrgCache`]: buckets ([`Bucket`], TTL intent in [`POLICIES`]) of org-scoped entries;
//!   [`OrgCache::get_or_load`] loads each missing key once however many callers ask
//!   (single-flight), and never caches errors, panics or timeouts.
//! - Tags and a reverse index: [`OrgCache::invalidate_tag`] removes exactly the tagged entries
//!   of one org, without scanning the cache.
//! - No stale fill: a generation per org and bucket, checked under a gate, stops a load that
//!   began before an invalidation from storing its result afterwards (raw moka stores it).
//! - Coherence across instances: [`Invalidation`] messages over an [`InvalidationBus`]
//!   ([`LocalBus`] in process, [`PgBus`] over LISTEN/NOTIFY), with gap detection and a flush
//!   after reconnects; the TTL is the backstop.
//! - [`Throttle`] for once-per-period work per org and [`ChangeFilter`] to skip unchanged writes.
//! - [`StatsSnapshot`]: hits, misses, loads, load time, evictions by cause, entries per bucket.

mod bucket;
mod bus;
mod cache;
mod change;
mod config;
mod entry;
mod error;
mod flight;
mod invalidate;
mod key;
mod local_bus;
mod message;
mod pg_bus;
mod state;
mod stats;
mod throttle;

pub use bucket::{Bucket, BucketPolicy, POLICIES};
pub use bus::{BusError, BusStatus, BusTask, InvalidationBus};
pub use cache::OrgCache;
pub use change::{ChangeFilter, Fingerprint};
pub use config::{BucketConfig, CacheConfig, MAX_TTL};
pub use entry::{CacheValue, Cached, Provenance};
pub use error::LoadError;
pub use key::{NameError, Tag, MAX_KEY_LEN, MAX_TAG_LEN};
pub use local_bus::LocalBus;
pub use message::{Invalidation, MessageError, Scope};
pub use pg_bus::{PgBus, PgBusOptions, CHANNEL};
pub use stats::{BucketStats, BusStats, Evictions, StatsSnapshot};
pub use throttle::{Throttle, ADMIN_ALERT_SYNC_TTL_DEFAULT, ADMIN_ALERT_SYNC_TTL_VAR};

#[cfg(test)]
mod tests;
