//! A tenant-isolated read cache on moka that never serves another org's data or a value older
//! than the last invalidation.
//!
#![doc = include_str!("../README.md")]
//!
//! # Pieces
//! - [`OrgCache`]: your buckets ([`Bucket`], each with a TTL and a capacity in
//!   [`CacheConfig`]) of org-scoped entries;
//!   [`OrgCache::get_or_load`] loads each missing key once however many callers ask
//!   (single-flight), and never caches errors, panics or timeouts.
//! - Tags and a reverse index: [`OrgCache::invalidate_tag`] removes exactly the tagged entries
//!   of one org, without scanning the cache.
//! - No stale fill: a generation per org and bucket, checked under a gate, stops a load that
//!   began before an invalidation from storing its result afterwards (raw moka stores it).
//! - Coherence across instances: [`Invalidation`] messages over an [`InvalidationBus`]
//!   ([`LocalBus`] in process, `PgBus` over LISTEN/NOTIFY with the `postgres` feature), with
//!   gap detection and a flush
//!   after reconnects; the TTL is the backstop.
//! - [`Throttle`] for once-per-period work per org and [`ChangeFilter`] to skip unchanged writes.
//! - [`StatsSnapshot`]: hits, misses, loads, load time, evictions by cause, entries per bucket.

#![deny(missing_docs)]

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
#[cfg(feature = "postgres")]
mod pg_bus;
mod state;
mod stats;
mod throttle;

pub use bucket::{Bucket, MAX_BUCKET_LEN};
pub use bus::{BusError, BusStatus, BusTask, InvalidationBus};
pub use cache::OrgCache;
pub use change::{ChangeFilter, Fingerprint};
pub use config::{BucketConfig, CacheConfig, DEFAULT_LOAD_TIMEOUT, MAX_TTL};
pub use entry::{CacheValue, Cached, Provenance};
pub use error::LoadError;
pub use key::{NameError, Tag, MAX_KEY_LEN, MAX_TAG_LEN};
pub use local_bus::LocalBus;
pub use message::{Invalidation, MessageError, Scope};
#[cfg(feature = "postgres")]
pub use pg_bus::{PgBus, PgBusOptions, CHANNEL};
pub use stats::{BucketStats, BusStats, Evictions, StatsSnapshot};
pub use throttle::Throttle;

#[cfg(test)]
mod tests;
