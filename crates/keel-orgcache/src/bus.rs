//! Coherence across instances: the `InvalidationBus` trait, how a cache publishes and applies
//! messages (with gap detection), and the task handle every bus returns.

use crate::bucket::Bucket;
use crate::cache::OrgCache;
use crate::message::{Invalidation, Scope};
use crate::stats::BusStats;
use futures::future::BoxFuture;
use keel_ids::OrgId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;

/// Why a message could not be sent or the bus could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// The transport failed to send (its message, for logs).
    #[error("cache invalidation bus: {0}")]
    Transport(String),
    /// [`OrgCache::attach_bus`] was called twice: a cache publishes to one bus.
    #[error("this cache is already connected to an invalidation bus")]
    AlreadyConnected,
}

/// Carries invalidations to the other instances. Delivery is at most once; receivers detect
/// gaps by epoch and flush, and each bucket's TTL is the backstop.
pub trait InvalidationBus: Send + Sync + 'static {
    /// Sends `message` to the other instances (at most once).
    fn publish<'a>(&'a self, message: &'a Invalidation) -> BoxFuture<'a, Result<(), BusError>>;
}

#[derive(Default)]
pub(crate) struct BusCounters {
    pub(crate) published: AtomicU64,
    pub(crate) publish_failures: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) gaps: AtomicU64,
    pub(crate) resyncs: AtomicU64,
}

impl BusCounters {
    pub(crate) fn snapshot(&self) -> BusStats {
        BusStats {
            published: self.published.load(Relaxed),
            publish_failures: self.publish_failures.load(Relaxed),
            received: self.received.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            gaps: self.gaps.load(Relaxed),
            resyncs: self.resyncs.load(Relaxed),
        }
    }
}

/// Baselines forgotten past this many (origin, org) pairs; losing one only means the next
/// message from that pair cannot reveal a gap.
const MAX_TRACKED: usize = 100_000;

/// The last epoch seen per sending instance and org.
#[derive(Default)]
pub(crate) struct EpochTracker(Mutex<HashMap<(u64, OrgId), u64>>);

impl EpochTracker {
    /// Records `epoch` and says whether messages between the last one and it are missing.
    fn observe(&self, origin: u64, org: OrgId, epoch: u64) -> bool {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_TRACKED && !map.contains_key(&(origin, org)) {
            map.clear();
        }
        let last = map.entry((origin, org)).or_insert(epoch);
        let gap = epoch > last.saturating_add(1);
        *last = (*last).max(epoch);
        gap
    }

    fn clear(&self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

impl OrgCache {
    /// Connects this cache's publishing side to `bus`; a bus implementation calls this when it
    /// starts, together with running a receive loop.
    pub fn attach_bus(&self, bus: Arc<dyn InvalidationBus>) -> Result<(), BusError> {
        self.inner.bus.set(bus).map_err(|_| BusError::AlreadyConnected)
    }

    pub(crate) async fn publish(&self, org: OrgId, bucket: Option<Bucket>, scope: Scope) {
        let Some(bus) = self.inner.bus.get() else { return };
        let epoch = {
            let mut e = self.inner.outgoing.entry(org).or_insert(0);
            *e += 1;
            *e
        };
        let msg = Invalidation { origin: self.inner.origin, org, bucket, scope, epoch };
        match bus.publish(&msg).await {
            Ok(()) => {
                self.inner.bus_counters.published.fetch_add(1, Relaxed);
            }
            Err(e) => {
                // Local removal already happened; other instances see the epoch jump on the
                // next message from us and flush the org, and the TTL bounds the rest.
                self.inner.bus_counters.publish_failures.fetch_add(1, Relaxed);
                tracing::warn!(%org, error = %e, "could not publish a cache invalidation");
            }
        }
    }

    /// Applies one received message. Our own messages are ignored; an epoch gap flushes the
    /// org; an unreadable message is logged and flushes its org, or everything when even the
    /// org cannot be read. Never fails.
    pub async fn receive(&self, payload: &str) {
        let c = &self.inner.bus_counters;
        c.received.fetch_add(1, Relaxed);
        match Invalidation::parse(payload, &self.inner.known) {
            Ok(msg) if msg.origin == self.inner.origin => {}
            Ok(msg) => {
                if self.inner.incoming.observe(msg.origin, msg.org, msg.epoch) {
                    c.gaps.fetch_add(1, Relaxed);
                    tracing::warn!(org = %msg.org, origin = format_args!("{:016x}", msg.origin), epoch = msg.epoch,
                        "cache invalidations were lost; flushing the org");
                    self.apply_local(msg.org, None, &Scope::All).await;
                }
                self.apply_local(msg.org, msg.bucket, &msg.scope).await;
            }
            Err(e) => {
                c.malformed.fetch_add(1, Relaxed);
                tracing::warn!(error = %e, "unreadable cache invalidation; flushing what it may have concerned");
                match e.org {
                    Some(org) => {
                        self.apply_local(org, None, &Scope::All).await;
                    }
                    None => self.resync().await,
                }
            }
        }
    }

    /// Called by a bus after (re)connecting or lagging: anything may have been missed.
    pub async fn resync_after_gap(&self) {
        self.inner.incoming.clear();
        self.resync().await;
    }

    /// This instance's id in messages.
    pub fn origin(&self) -> u64 {
        self.inner.origin
    }

    /// The bus counters (published, received, gaps, resyncs).
    pub fn bus_stats(&self) -> BusStats {
        self.inner.bus_counters.snapshot()
    }
}

/// Progress of a bus's receive loop, for readiness checks and for tests waiting on delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusStatus {
    /// Listening now.
    pub connected: bool,
    /// Times the loop (re)connected and flushed.
    pub resyncs: u64,
    /// Payloads handled (including our own echoes and unreadable ones).
    pub handled: u64,
}

/// The running receive loop of a bus; dropping it stops the loop.
pub struct BusTask {
    pub(crate) status: watch::Receiver<BusStatus>,
    pub(crate) handle: tokio::task::JoinHandle<()>,
}

impl BusTask {
    /// The loop's progress right now.
    pub fn status(&self) -> BusStatus {
        *self.status.borrow()
    }

    /// Waits until `f` holds for the loop's status (no polling: woken on every change). Returns
    /// `false` if the loop ended first.
    pub async fn wait_until(&self, mut f: impl FnMut(&BusStatus) -> bool) -> bool {
        let mut rx = self.status.clone();
        let ok = rx.wait_for(|s| f(s)).await.is_ok();
        ok
    }

    /// Waits until the loop is listening (and has flushed what it may have missed before).
    pub async fn ready(&self) -> bool {
        self.wait_until(|s| s.connected).await
    }
}

impl Drop for BusTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}
