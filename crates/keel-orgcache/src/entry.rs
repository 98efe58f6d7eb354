//! Stored entries (type-erased behind one `Arc`) and the typed handle a caller gets back.

use crate::key::Tag;
use chrono::{DateTime, Utc};
use std::any::Any;
use std::ops::Deref;
use std::sync::Arc;

/// A value the cache can hold. `weight` is its approximate size in bytes, counted against the
/// bucket's capacity; the default is the shallow size, so types owning heap data (strings,
/// vectors) should add it.
pub trait CacheValue: Send + Sync + 'static {
    /// Approximate size in bytes, counted against the bucket's capacity.
    fn weight(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

macro_rules! shallow_value {
    ($($t:ty),*) => { $(impl CacheValue for $t {})* };
}
shallow_value!(bool, u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, (), DateTime<Utc>);

impl CacheValue for String {
    fn weight(&self) -> usize {
        std::mem::size_of::<String>() + self.capacity()
    }
}

impl CacheValue for Arc<str> {
    fn weight(&self) -> usize {
        std::mem::size_of::<Arc<str>>() + self.len()
    }
}

impl<T: CacheValue> CacheValue for Vec<T> {
    fn weight(&self) -> usize {
        std::mem::size_of::<Vec<T>>()
            + self.iter().map(CacheValue::weight).sum::<usize>()
            + (self.capacity() - self.len()) * std::mem::size_of::<T>()
    }
}

impl<T: CacheValue> CacheValue for Option<T> {
    fn weight(&self) -> usize {
        std::mem::size_of::<Option<T>>()
            + self.as_ref().map_or(0, |v| v.weight().saturating_sub(std::mem::size_of::<T>()))
    }
}

impl<T: CacheValue> CacheValue for Box<T> {
    fn weight(&self) -> usize {
        std::mem::size_of::<Box<T>>() + (**self).weight()
    }
}

impl<T: CacheValue> CacheValue for Arc<T> {
    fn weight(&self) -> usize {
        std::mem::size_of::<Arc<T>>() + (**self).weight()
    }
}

impl<A: CacheValue, B: CacheValue> CacheValue for (A, B) {
    fn weight(&self) -> usize {
        self.0.weight() + self.1.weight()
    }
}

/// One cached value with its metadata. `id` is unique per stored entry, so index clean-up on
/// eviction can tell an old entry from the one that replaced it under the same key.
pub(crate) struct TypedEntry<V> {
    pub(crate) value: V,
    pub(crate) as_of: DateTime<Utc>,
    pub(crate) id: u64,
    pub(crate) tags: Box<[Tag]>,
    pub(crate) weight: u32,
}

/// The erased form stored in moka: one `Arc` clone per hit, like a raw `Cache<K, Arc<V>>`.
pub(crate) trait ErasedEntry: Send + Sync + 'static {
    fn id(&self) -> u64;
    fn tags(&self) -> &[Tag];
    fn weight(&self) -> u32;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<V: Send + Sync + 'static> ErasedEntry for TypedEntry<V> {
    fn id(&self) -> u64 {
        self.id
    }
    fn tags(&self) -> &[Tag] {
        &self.tags
    }
    fn weight(&self) -> u32 {
        self.weight
    }
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

pub(crate) type StoredEntry = Arc<dyn ErasedEntry>;

/// Recovers the typed entry; `None` when the key was stored with another type.
pub(crate) fn downcast<V: Send + Sync + 'static>(e: StoredEntry) -> Option<Arc<TypedEntry<V>>> {
    e.into_any().downcast::<TypedEntry<V>>().ok()
}

/// How the value in a [`Cached`] was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// Served from the cache.
    Hit,
    /// Loaded by this call (or a concurrent call it waited for) and stored.
    Loaded,
    /// Loaded, but an invalidation of the same org and bucket happened while the load ran, so
    /// the value was returned to the calls that were already waiting and NOT stored. Every one
    /// of those calls started before the invalidation finished; a call that starts afterwards
    /// never receives it. Handlers that need the user's own write reflected can call again.
    Superseded,
}

/// A value from the cache: derefs to `V`, and says when it was produced (`as_of`, for
/// dashboard responses) and how it was obtained.
pub struct Cached<V> {
    pub(crate) entry: Arc<TypedEntry<V>>,
    pub(crate) provenance: Provenance,
}

impl<V> Cached<V> {
    /// The value (also reachable through `Deref`).
    pub fn value(&self) -> &V {
        &self.entry.value
    }

    /// When the loader produced the value.
    pub fn as_of(&self) -> DateTime<Utc> {
        self.entry.as_of
    }

    /// How the value was obtained.
    pub fn provenance(&self) -> Provenance {
        self.provenance
    }

    /// Served from the cache.
    pub fn was_hit(&self) -> bool {
        self.provenance == Provenance::Hit
    }

    /// Loaded but not stored, because an invalidation overtook the load.
    pub fn is_superseded(&self) -> bool {
        self.provenance == Provenance::Superseded
    }

    /// The tags the value was stored with.
    pub fn tags(&self) -> &[Tag] {
        &self.entry.tags
    }
}

impl<V> Deref for Cached<V> {
    type Target = V;
    fn deref(&self) -> &V {
        &self.entry.value
    }
}

impl<V> Clone for Cached<V> {
    fn clone(&self) -> Self {
        Self { entry: self.entry.clone(), provenance: self.provenance }
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for Cached<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("value", &self.entry.value)
            .field("as_of", &self.entry.as_of)
            .field("provenance", &self.provenance)
            .finish()
    }
}
