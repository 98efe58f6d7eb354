//! `PgBus`: invalidations over Postgres LISTEN/NOTIFY (channel `keel_orgcache` unless set),
//! received on a dedicated connection (never one from the application pool), with a flush after
//! every (re)connect and a heartbeat that catches silently dead listeners.

use crate::bus::{BusError, BusStatus, BusTask, InvalidationBus};
use crate::cache::OrgCache;
use crate::message::Invalidation;
use futures::future::BoxFuture;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The default NOTIFY channel ([`PgBusOptions::channel`]).
pub const CHANNEL: &str = "keel_orgcache";

/// How the listener notices and recovers from a dead connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgBusOptions {
    /// After this long without a notification, the listener connection is probed.
    pub heartbeat: Duration,
    /// A probe (or a connect) taking longer than this counts as a dead connection.
    pub probe_timeout: Duration,
    /// Upper bound of the doubling delay between reconnect attempts.
    pub max_backoff: Duration,
    /// The LISTEN/NOTIFY channel. Every instance of one service must use the same one; two
    /// services sharing a database use two, so neither flushes on the other's messages.
    pub channel: &'static str,
}

impl Default for PgBusOptions {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(30),
            channel: CHANNEL,
        }
    }
}

struct Publisher(PgPool, &'static str);

impl InvalidationBus for Publisher {
    fn publish<'a>(&'a self, message: &'a Invalidation) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(self.1)
                .bind(message.encode())
                .execute(&self.0)
                .await
                .map(drop)
                .map_err(|e| BusError::Transport(e.to_string()))
        })
    }
}

/// Postgres LISTEN/NOTIFY coherence for an [`OrgCache`].
pub struct PgBus;

impl PgBus {
    /// Publishes `cache`'s invalidations through `pool` and applies other instances' to it.
    /// Must be called inside a tokio runtime. SQLite has no LISTEN/NOTIFY and is single-node:
    /// use [`crate::LocalBus`] (or no bus) there.
    pub fn connect(cache: &OrgCache, pool: &PgPool) -> Result<BusTask, BusError> {
        PgBus::connect_with(cache, pool, PgBusOptions::default())
    }

    /// [`PgBus::connect`] with other heartbeat, probe and back-off settings.
    pub fn connect_with(cache: &OrgCache, pool: &PgPool, options: PgBusOptions) -> Result<BusTask, BusError> {
        cache.attach_bus(Arc::new(Publisher(pool.clone(), options.channel)))?;
        let (status_tx, status) = watch::channel(BusStatus::default());
        let handle = tokio::spawn(listen_loop(cache.clone(), pool.clone(), options, status_tx));
        Ok(BusTask { status, handle })
    }

    /// The `application_name` of `cache`'s listener connection, to find it in
    /// `pg_stat_activity`.
    pub fn listener_name(cache: &OrgCache) -> String {
        format!("keel-orgcache-{:016x}", cache.origin())
    }
}

/// A pool of one connection of its own, opened with the application pool's settings, so the
/// listener never holds (or is starved by) an application connection. A new one per attempt,
/// so a connection that went silent is never handed back.
fn listener_pool(app: &PgPool, name: &str, options: &PgBusOptions) -> PgPool {
    let opts = (*app.connect_options()).clone().application_name(name);
    PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(options.probe_timeout)
        .connect_lazy_with(opts)
}

async fn connect_listener(app: &PgPool, name: &str, options: &PgBusOptions) -> Result<(PgListener, PgPool), String> {
    let pool = listener_pool(app, name, options);
    let fut = async {
        let mut l = PgListener::connect_with(&pool).await?;
        l.listen(options.channel).await?;
        Ok::<_, sqlx::Error>(l)
    };
    match tokio::time::timeout(options.probe_timeout, fut).await {
        Ok(Ok(l)) => Ok((l, pool)),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("connecting took longer than {:?}", options.probe_timeout)),
    }
}

async fn listen_loop(cache: OrgCache, app: PgPool, options: PgBusOptions, status: watch::Sender<BusStatus>) {
    let name = PgBus::listener_name(&cache);
    let mut backoff = Duration::from_millis(100);
    loop {
        let (mut listener, pool) = match connect_listener(&app, &name, &options).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "cache invalidation listener cannot connect");
                // Pacing reconnects to a database that is down; not synchronisation.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(options.max_backoff);
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        // Whatever was published while we were not listening is lost: flush, then serve.
        cache.resync_after_gap().await;
        status.send_modify(|s| {
            s.connected = true;
            s.resyncs += 1;
        });
        tracing::info!(channel = options.channel, "cache invalidation listener connected");
        loop {
            match tokio::time::timeout(options.heartbeat, listener.try_recv()).await {
                Ok(Ok(Some(n))) => {
                    cache.receive(n.payload()).await;
                    status.send_modify(|s| s.handled += 1);
                }
                Ok(Ok(None)) => {
                    // sqlx lost the connection and has already reconnected and re-listened;
                    // notifications sent in between are gone.
                    tracing::warn!("cache invalidation listener reconnected; flushing");
                    cache.resync_after_gap().await;
                    status.send_modify(|s| s.resyncs += 1);
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cache invalidation listener failed; reconnecting");
                    break;
                }
                Err(_) => {
                    let probe = sqlx::query("SELECT 1").execute(&mut listener);
                    if !matches!(tokio::time::timeout(options.probe_timeout, probe).await, Ok(Ok(_))) {
                        tracing::warn!("cache invalidation listener stopped answering; reconnecting");
                        break;
                    }
                }
            }
        }
        status.send_modify(|s| s.connected = false);
        drop(listener);
        // Closing waits for the connection; do not hold up the reconnect for a dead socket.
        tokio::spawn(async move { pool.close().await });
    }
}
