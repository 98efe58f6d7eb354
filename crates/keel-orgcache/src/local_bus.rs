//! `LocalBus`: invalidation between caches in one process (tests, single-node SQLite), with the
//! same semantics as the Postgres bus: at most once, and a flush when a receiver lags.

use crate::bus::{BusError, BusStatus, BusTask, InvalidationBus};
use crate::cache::OrgCache;
use crate::message::Invalidation;
use futures::future::BoxFuture;
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

/// An in-process broadcast of invalidation messages. Cloning shares the channel.
#[derive(Clone)]
pub struct LocalBus {
    tx: broadcast::Sender<Arc<str>>,
}

struct Publisher(broadcast::Sender<Arc<str>>);

impl InvalidationBus for Publisher {
    fn publish<'a>(&'a self, message: &'a Invalidation) -> BoxFuture<'a, Result<(), BusError>> {
        // No receiver is not an error: a single instance has nobody to tell.
        let _ = self.0.send(Arc::from(message.encode()));
        Box::pin(async { Ok(()) })
    }
}

impl LocalBus {
    /// `capacity` messages may be queued per receiver before it lags (and then flushes).
    pub fn new(capacity: usize) -> LocalBus {
        LocalBus { tx: broadcast::channel(capacity.max(1)).0 }
    }

    /// Publishes `cache`'s invalidations here and applies everyone else's to it. Must be called
    /// inside a tokio runtime.
    pub fn connect(&self, cache: &OrgCache) -> Result<BusTask, BusError> {
        cache.attach_bus(Arc::new(Publisher(self.tx.clone())))?;
        // Subscribed before returning, so nothing published after `connect` is missed.
        let mut rx = self.tx.subscribe();
        let (status_tx, status) = watch::channel(BusStatus::default());
        let cache = cache.clone();
        let handle = tokio::spawn(async move {
            cache.resync_after_gap().await;
            status_tx.send_modify(|s| {
                s.connected = true;
                s.resyncs += 1;
            });
            loop {
                match rx.recv().await {
                    Ok(payload) => {
                        cache.receive(&payload).await;
                        status_tx.send_modify(|s| s.handled += 1);
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "local cache bus lagged; flushing");
                        cache.resync_after_gap().await;
                        status_tx.send_modify(|s| s.resyncs += 1);
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
            status_tx.send_modify(|s| s.connected = false);
        });
        Ok(BusTask { status, handle })
    }

    /// Sends a raw payload, as a misbehaving peer would; for tests of malformed messages.
    pub fn send_raw(&self, payload: &str) {
        let _ = self.tx.send(Arc::from(payload));
    }
}
