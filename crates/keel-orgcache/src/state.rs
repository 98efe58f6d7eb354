//! Per org and bucket: the generation that refuses stale fills, the gate that orders fills
//! against invalidations, and the reverse index (tag -> keys, key -> tags).

use crate::key::Tag;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// One org's slice of one bucket. States are never dropped: the epoch must only grow for as
/// long as a load that read it may still be running.
#[derive(Default)]
pub(crate) struct OrgState {
    /// Bumped by every write or invalidation in this org and bucket, under `gate`.
    epoch: AtomicU64,
    /// Held by a fill while it checks the epoch and inserts, and by an invalidation while it
    /// bumps the epoch and removes entries, so neither can slip between the other's steps.
    pub(crate) gate: tokio::sync::Mutex<()>,
    index: Mutex<TagIndex>,
}

impl OrgState {
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Call with `gate` held.
    pub(crate) fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Never held across an await; a poisoned lock only means a panic elsewhere while the maps
    /// were consistent between statements, so the data is still usable.
    pub(crate) fn index(&self) -> MutexGuard<'_, TagIndex> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Every live key of one org in one bucket with its entry id and tags, and the reverse map.
#[derive(Default)]
pub(crate) struct TagIndex {
    by_key: HashMap<Arc<str>, (u64, Box<[Tag]>)>,
    by_tag: HashMap<Tag, HashSet<Arc<str>>>,
}

impl TagIndex {
    /// Records `key` as holding entry `id` with `tags`, replacing what it held before.
    pub(crate) fn register(&mut self, key: &Arc<str>, id: u64, tags: &[Tag]) {
        self.unregister(key);
        for t in tags {
            self.by_tag.entry(t.clone()).or_default().insert(key.clone());
        }
        self.by_key.insert(key.clone(), (id, tags.into()));
    }

    pub(crate) fn unregister(&mut self, key: &str) -> bool {
        let Some((_, tags)) = self.by_key.remove(key) else { return false };
        for t in tags.iter() {
            if let Some(set) = self.by_tag.get_mut(t) {
                set.remove(key);
                if set.is_empty() {
                    self.by_tag.remove(t);
                }
            }
        }
        true
    }

    /// For eviction: forget `key` only if it still holds entry `id`, not a newer replacement.
    pub(crate) fn unregister_if(&mut self, key: &str, id: u64) {
        if self.by_key.get(key).is_some_and(|(cur, _)| *cur == id) {
            self.unregister(key);
        }
    }

    /// Removes and returns the keys carrying `tag`.
    pub(crate) fn take_tag(&mut self, tag: &Tag) -> Vec<Arc<str>> {
        let keys: Vec<Arc<str>> = self.by_tag.remove(tag).map(|s| s.into_iter().collect()).unwrap_or_default();
        for k in &keys {
            self.unregister(k);
        }
        keys
    }

    pub(crate) fn take_all(&mut self) -> Vec<Arc<str>> {
        self.by_tag.clear();
        self.by_key.drain().map(|(k, _)| k).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }

    pub(crate) fn tag_len(&self, tag: &Tag) -> usize {
        self.by_tag.get(tag).map_or(0, HashSet::len)
    }
}
