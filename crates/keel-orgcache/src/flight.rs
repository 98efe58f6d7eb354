//! Single-flight bookkeeping: one in-progress load per key and generation, and how its outcome
//! reaches the callers waiting for it.

use crate::entry::StoredEntry;
use crate::key::CacheKey;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What a finished load produced, cloned to every waiter.
#[derive(Clone)]
pub(crate) enum Outcome {
    Stored(StoredEntry),
    /// Loaded but not stored: an invalidation overtook the load (see `Provenance::Superseded`).
    Superseded(StoredEntry),
    Failed(FlightError),
}

#[derive(Clone)]
pub(crate) enum FlightError {
    /// The loader's error as `Arc<E>`, erased so loads of any error type share one map.
    Loader(Arc<dyn Any + Send + Sync>),
    Panicked,
    TimedOut(Duration),
}

pub(crate) struct Flight {
    id: u64,
    /// The generation the load started under; a caller arriving under a later generation must
    /// not join it, since the load may have read data from before the invalidation.
    epoch: u64,
    rx: watch::Receiver<Option<Outcome>>,
}

#[derive(Default)]
pub(crate) struct Flights {
    map: DashMap<CacheKey, Flight>,
    next_id: AtomicU64,
}

pub(crate) enum Role<'a> {
    Lead(Leader<'a>),
    Wait(watch::Receiver<Option<Outcome>>),
}

impl Flights {
    /// Joins the load of `key` started under `epoch`, or registers this caller as its leader.
    pub(crate) fn join_or_lead(&self, key: &CacheKey, epoch: u64) -> Role<'_> {
        let entry = self.map.entry(key.clone());
        if let Entry::Occupied(o) = &entry {
            if o.get().epoch == epoch {
                return Role::Wait(o.get().rx.clone());
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(None);
        // A flight from an older generation is replaced; its leader still finishes and answers
        // its own waiters, and its `remove_if` below will not touch ours.
        entry.insert(Flight { id, epoch, rx });
        Role::Lead(Leader { flights: self, key: key.clone(), id, tx })
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// Held by the caller running the loader. Dropping it (finished or cancelled) removes the
/// flight; waiters of a cancelled leader see the channel close and start over.
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    key: CacheKey,
    id: u64,
    tx: watch::Sender<Option<Outcome>>,
}

impl Leader<'_> {
    pub(crate) fn finish(self, outcome: Outcome) {
        self.tx.send_replace(Some(outcome));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let id = self.id;
        self.flights.map.remove_if(&self.key, |_, f| f.id == id);
    }
}
