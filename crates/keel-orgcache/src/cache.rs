//! `OrgCache`: one moka cache per bucket, reads and single-flight loads, all scoped by `OrgId`.

use crate::bucket::Bucket;
use crate::config::{BucketConfig, CacheConfig};
use crate::entry::{downcast, CacheValue, Cached, Provenance, StoredEntry, TypedEntry};
use crate::error::LoadError;
use crate::flight::{FlightError, Flights, Outcome, Role};
use crate::key::{check_key, CacheKey, KeyRef, NameError, Tag};
use crate::state::OrgState;
use crate::stats::{Counters, StatsSnapshot};
use dashmap::DashMap;
use futures::FutureExt;
use keel_ids::OrgId;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Added to each entry's weight for the key copy in the index and moka's own bookkeeping.
const ENTRY_OVERHEAD: usize = 96;

/// What the eviction listener needs; kept apart from the moka cache so the listener holds no
/// reference to the cache that owns it.
#[derive(Default)]
pub(crate) struct BucketShared {
    pub(crate) orgs: DashMap<OrgId, Arc<OrgState>>,
    pub(crate) counters: Counters,
}

impl BucketShared {
    pub(crate) fn org(&self, org: OrgId) -> Arc<OrgState> {
        if let Some(s) = self.orgs.get(&org) {
            return s.clone();
        }
        self.orgs.entry(org).or_default().clone()
    }

    pub(crate) fn existing_org(&self, org: OrgId) -> Option<Arc<OrgState>> {
        self.orgs.get(&org).map(|s| s.clone())
    }
}

pub(crate) struct BucketCore {
    pub(crate) bucket: Bucket,
    pub(crate) cache: moka::future::Cache<CacheKey, StoredEntry>,
    pub(crate) shared: Arc<BucketShared>,
    pub(crate) flights: Flights,
    pub(crate) load_timeout: Duration,
}

impl BucketCore {
    fn new(bucket: Bucket, cfg: &BucketConfig) -> Self {
        let shared = Arc::new(BucketShared::default());
        let listener_shared = shared.clone();
        let cache = moka::future::Cache::builder()
            .name(bucket.name())
            .max_capacity(cfg.max_weight)
            .time_to_live(cfg.ttl)
            .weigher(|k: &CacheKey, v: &StoredEntry| {
                let w = k.key.len().saturating_add(ENTRY_OVERHEAD).saturating_add(v.weight() as usize);
                u32::try_from(w).unwrap_or(u32::MAX)
            })
            .eviction_listener(move |k: Arc<CacheKey>, v: StoredEntry, cause| {
                listener_shared.counters.evicted(cause);
                // Entries removed by an invalidation were already unindexed; the id check
                // makes this a no-op for them and for replaced entries.
                if let Some(state) = listener_shared.existing_org(k.org) {
                    state.index().unregister_if(&k.key, v.id());
                }
            })
            .build();
        Self { bucket, cache, shared, flights: Flights::default(), load_timeout: cfg.load_timeout }
    }

    /// Stores `entry` unless the generation moved since `epoch` was read (a stale fill).
    pub(crate) async fn commit(&self, state: &OrgState, epoch: u64, key: CacheKey, entry: StoredEntry) -> bool {
        let _gate = state.gate.lock().await;
        if state.epoch() != epoch {
            return false;
        }
        // Indexed before the insert, so an immediate size eviction of this very entry finds
        // its registration and removes it.
        state.index().register(&key.key, entry.id(), entry.tags());
        self.cache.insert(key, entry).await;
        true
    }
}

pub(crate) struct Inner {
    /// In configuration order; looked up by name (a handful of buckets: a scan beats a map).
    pub(crate) buckets: Box<[BucketCore]>,
    /// The same buckets, for reading their names in received messages.
    pub(crate) known: Box<[Bucket]>,
    next_entry_id: AtomicU64,
    /// This instance's id in invalidation messages, so it can ignore its own.
    pub(crate) origin: u64,
    pub(crate) bus: OnceLock<Arc<dyn crate::bus::InvalidationBus>>,
    pub(crate) outgoing: DashMap<OrgId, u64>,
    pub(crate) incoming: crate::bus::EpochTracker,
    pub(crate) bus_counters: crate::bus::BusCounters,
}

/// A tenant-isolated read cache. Cloning is cheap and shares the cache.
///
/// Every operation takes the `OrgId` it acts on and only ever touches that org's entries: the
/// org is part of every key, tag index and generation, so equal keys or tags in two orgs never
/// meet. The only operation spanning orgs is [`OrgCache::resync`], a full flush used by the
/// invalidation bus after it may have missed messages.
#[derive(Clone)]
pub struct OrgCache {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for OrgCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgCache").field("origin", &format_args!("{:016x}", self.inner.origin)).finish_non_exhaustive()
    }
}

impl OrgCache {
    /// A cache with the buckets of `config`. Operations on a bucket not configured here find
    /// nothing, store nothing, and say so where they can return an error
    /// ([`NameError::UnknownBucket`]).
    pub fn new(config: &CacheConfig) -> OrgCache {
        OrgCache {
            inner: Arc::new(Inner {
                buckets: config.buckets().map(|(b, c)| BucketCore::new(b, c)).collect(),
                known: config.buckets().map(|(b, _)| b).collect(),
                next_entry_id: AtomicU64::new(1),
                origin: rand::random::<u64>() | 1,
                bus: OnceLock::new(),
                outgoing: DashMap::new(),
                incoming: crate::bus::EpochTracker::default(),
                bus_counters: crate::bus::BusCounters::default(),
            }),
        }
    }

    pub(crate) fn core(&self, bucket: Bucket) -> Option<&BucketCore> {
        self.inner.buckets.iter().find(|b| b.bucket == bucket)
    }

    fn known_core(&self, bucket: Bucket) -> Result<&BucketCore, NameError> {
        self.core(bucket).ok_or(NameError::UnknownBucket(bucket))
    }

    /// The buckets of this cache, in configuration order.
    pub fn buckets(&self) -> &[Bucket] {
        &self.inner.known
    }

    /// The cached value, if present and stored as a `V`. A key stored with another type reads
    /// as absent (and is counted in `type_mismatches`); so does a bucket this cache does not have.
    pub async fn get<V: Send + Sync + 'static>(&self, org: OrgId, bucket: Bucket, key: &str) -> Option<Cached<V>> {
        get_in(self.core(bucket)?, org, key).await
    }

    fn entry<V: CacheValue>(&self, value: V, tags: &[Tag]) -> Arc<TypedEntry<V>> {
        let tag_bytes: usize = tags.iter().map(|t| t.as_str().len() + 16).sum();
        let weight = u32::try_from(value.weight().saturating_add(tag_bytes)).unwrap_or(u32::MAX);
        Arc::new(TypedEntry {
            value,
            as_of: chrono::Utc::now(),
            id: self.inner.next_entry_id.fetch_add(1, Relaxed),
            tags: tags.into(),
            weight,
        })
    }

    /// Stores a value produced by a write (write-through). Like an invalidation, it supersedes
    /// loads of this org and bucket still in flight, so they cannot overwrite it with older data.
    pub async fn insert<V: CacheValue>(
        &self,
        org: OrgId,
        bucket: Bucket,
        key: &str,
        tags: &[Tag],
        value: V,
    ) -> Result<Cached<V>, NameError> {
        check_key(key)?;
        let b = self.known_core(bucket)?;
        let state = b.shared.org(org);
        let entry = self.entry(value, tags);
        let ckey = CacheKey::new(org, key);
        {
            let _gate = state.gate.lock().await;
            state.bump();
            state.index().register(&ckey.key, entry.id, tags);
            b.cache.insert(ckey, entry.clone() as StoredEntry).await;
        }
        // Other instances only need to drop their copy; they reload on their next read.
        self.publish(org, Some(bucket), crate::message::Scope::Key(key.to_owned())).await;
        Ok(Cached { entry, provenance: Provenance::Loaded })
    }

    /// Returns the cached value or runs `loader` to produce it. Concurrent misses on one key run
    /// one loader and the others wait for it; its error is returned to all of them and never
    /// stored. A loader that panics or exceeds the bucket's load timeout fails only the calls
    /// waiting for it. If an invalidation of this org and bucket happens while the loader runs,
    /// the value is returned flagged [`Provenance::Superseded`] and not stored.
    pub async fn get_or_load<V, E, F, Fut>(
        &self,
        org: OrgId,
        bucket: Bucket,
        key: &str,
        tags: &[Tag],
        loader: F,
    ) -> Result<Cached<V>, LoadError<E>>
    where
        V: CacheValue,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let b = self.known_core(bucket)?;
        if let Some(hit) = get_in(b, org, key).await {
            return Ok(hit);
        }
        check_key(key)?;
        let state = b.shared.org(org);
        let ckey = CacheKey::new(org, key);
        let (leader, epoch) = loop {
            let epoch = state.epoch();
            match b.flights.join_or_lead(&ckey, epoch) {
                Role::Lead(l) => break (l, epoch),
                Role::Wait(mut rx) => {
                    let outcome = match rx.wait_for(Option::is_some).await {
                        Ok(v) => v.clone(),
                        // The leader was cancelled before finishing: start over.
                        Err(_) => continue,
                    };
                    if let Some(outcome) = outcome {
                        return convert(bucket, outcome);
                    }
                }
            }
        };
        // Another leader may have stored the key between our miss and our registration.
        if let Some(e) = b.cache.get(&ckey.as_ref()).await {
            leader.finish(Outcome::Stored(e.clone()));
            return convert(bucket, Outcome::Stored(e));
        }
        let counters = &b.shared.counters;
        counters.loads.fetch_add(1, Relaxed);
        let started = Instant::now();
        let run = async {
            let fut = std::panic::catch_unwind(AssertUnwindSafe(loader)).map_err(|_| ())?;
            AssertUnwindSafe(fut).catch_unwind().await.map_err(|_| ())
        };
        // A load is a database round trip on the request path: its own span in a trace.
        let span = tracing::info_span!("cache.load", cache.bucket = %bucket, otel.status_code = tracing::field::Empty);
        let result = tracing::Instrument::instrument(tokio::time::timeout(b.load_timeout, run), span.clone()).await;
        if !matches!(result, Ok(Ok(Ok(_)))) {
            span.record("otel.status_code", "error");
        }
        counters.load_took(started.elapsed());
        let (outcome, own) = match result {
            Err(_) => {
                counters.load_timeouts.fetch_add(1, Relaxed);
                tracing::warn!(bucket = %bucket, %org, timeout = ?b.load_timeout, "cache loader timed out");
                (Outcome::Failed(FlightError::TimedOut(b.load_timeout)), None)
            }
            Ok(Err(())) => {
                counters.load_panics.fetch_add(1, Relaxed);
                tracing::error!(bucket = %bucket, %org, "cache loader panicked");
                (Outcome::Failed(FlightError::Panicked), None)
            }
            Ok(Ok(Err(e))) => {
                counters.load_failures.fetch_add(1, Relaxed);
                (Outcome::Failed(FlightError::Loader(Arc::new(e))), None)
            }
            Ok(Ok(Ok(v))) => {
                let entry = self.entry(v, tags);
                let stored: StoredEntry = entry.clone();
                if b.commit(&state, epoch, ckey, stored.clone()).await {
                    (Outcome::Stored(stored), Some(Cached { entry, provenance: Provenance::Loaded }))
                } else {
                    counters.superseded.fetch_add(1, Relaxed);
                    (Outcome::Superseded(stored), Some(Cached { entry, provenance: Provenance::Superseded }))
                }
            }
        };
        leader.finish(outcome.clone());
        match own {
            Some(c) => Ok(c),
            None => convert(bucket, outcome),
        }
    }

    /// Counters for every bucket and the bus.
    pub fn stats(&self) -> StatsSnapshot {
        StatsSnapshot {
            buckets: self
                .inner
                .buckets
                .iter()
                .map(|b| b.shared.counters.snapshot(b.bucket, b.cache.entry_count(), b.cache.weighted_size()))
                .collect(),
            bus: self.inner.bus_counters.snapshot(),
        }
    }

    /// Runs moka's pending maintenance (expirations, evictions, counts) now, so `stats` is exact.
    pub async fn run_pending_tasks(&self) {
        for b in &self.inner.buckets {
            b.cache.run_pending_tasks().await;
        }
    }

    /// How many keys of `org` carry `tag` in `bucket` (from the reverse index).
    pub fn tagged_len(&self, org: OrgId, bucket: Bucket, tag: &Tag) -> usize {
        let state = self.core(bucket).and_then(|b| b.shared.existing_org(org));
        state.map_or(0, |s| s.index().tag_len(tag))
    }

    /// How many keys of `org` are indexed in `bucket`.
    pub fn org_len(&self, org: OrgId, bucket: Bucket) -> usize {
        self.core(bucket).and_then(|b| b.shared.existing_org(org)).map_or(0, |s| s.index().len())
    }

    /// Loads currently running in `bucket` (all orgs); for tests and diagnostics.
    pub fn loads_in_flight(&self, bucket: Bucket) -> usize {
        self.core(bucket).map_or(0, |b| b.flights.len())
    }
}

async fn get_in<V: Send + Sync + 'static>(b: &BucketCore, org: OrgId, key: &str) -> Option<Cached<V>> {
    match b.cache.get(&KeyRef { org, key }).await {
        Some(e) => match downcast::<V>(e) {
            Some(entry) => {
                b.shared.counters.hits.incr();
                Some(Cached { entry, provenance: Provenance::Hit })
            }
            None => {
                b.shared.counters.type_mismatches.fetch_add(1, Relaxed);
                None
            }
        },
        None => {
            b.shared.counters.misses.incr();
            None
        }
    }
}

fn convert<V: Send + Sync + 'static, E: Send + Sync + 'static>(
    bucket: Bucket,
    outcome: Outcome,
) -> Result<Cached<V>, LoadError<E>> {
    let mismatch = || LoadError::TypeMismatch { bucket, expected: std::any::type_name::<V>() };
    match outcome {
        Outcome::Stored(e) => {
            downcast::<V>(e).map(|entry| Cached { entry, provenance: Provenance::Loaded }).ok_or_else(mismatch)
        }
        Outcome::Superseded(e) => {
            downcast::<V>(e).map(|entry| Cached { entry, provenance: Provenance::Superseded }).ok_or_else(mismatch)
        }
        Outcome::Failed(FlightError::Panicked) => Err(LoadError::Panicked { bucket }),
        Outcome::Failed(FlightError::TimedOut(after)) => Err(LoadError::TimedOut { bucket, after }),
        Outcome::Failed(FlightError::Loader(err)) => match err.downcast::<E>() {
            Ok(error) => Err(LoadError::Failed { bucket, error }),
            Err(_) => Err(LoadError::TypeMismatch { bucket, expected: std::any::type_name::<E>() }),
        },
    }
}
