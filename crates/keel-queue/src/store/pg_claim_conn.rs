//! The claim loop's own PostgreSQL connection, kept between claims.
//!
//! Taken from the pool for every claim, a connection cost two extra round trips: sqlx's ping
//! when it is lent and keel-storage's release check (`SELECT now() <> statement_timestamp()`)
//! when it comes back. A claim is one statement in an implicit transaction, so it can never
//! leave a transaction open, and keeping the connection loses nothing the check protects.
//! Measured (issue #19): a burn-down claiming 8 jobs at a time went from 7.2k to 8.3k jobs/s
//! with the round trips gone, and the claim after an idle worker's wakeup lost one.
//!
//! Only one claim at a time uses it; a claim that finds it busy (another queue's loop) takes a
//! pooled connection as before. Small pools keep every connection: the connection is kept only
//! when the pool has at least [`MIN_POOL_TO_KEEP`] of them, so a worker on a pool of 2 can
//! still finish what it claims. Any error drops it (back to the pool, through the release
//! check); the next claim takes a fresh one. When the worker's claim loops stop, it goes back
//! too ([`crate::JobStore::claims_stopped`]): a pool's `close` waits for every connection lent,
//! and a host closing its pool must not hang on a worker it has stopped but not yet dropped.

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use std::sync::Arc;
use tokio::sync::{Mutex, MutexGuard};

/// The smallest pool whose claim loop keeps a connection of its own: the completer, the
/// heartbeat, the rescuer and the operators' verbs still have three between them.
pub(crate) const MIN_POOL_TO_KEEP: u32 = 4;

/// The kept connection, if any; clones share it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClaimConn(Arc<Mutex<Option<PoolConnection<Postgres>>>>);

/// A connection for one claim: the kept one, or one lent by the pool for this claim alone.
pub(crate) enum Lent<'a> {
    Kept(MutexGuard<'a, Option<PoolConnection<Postgres>>>),
    Pooled(PoolConnection<Postgres>),
}

impl ClaimConn {
    /// The kept connection when it is free (taking one from the pool the first time), else a
    /// pooled one.
    pub(crate) async fn lend<'a>(&'a self, pool: &PgPool) -> Result<Lent<'a>, sqlx::Error> {
        if pool.options().get_max_connections() < MIN_POOL_TO_KEEP {
            return Ok(Lent::Pooled(pool.acquire().await?));
        }
        match self.0.try_lock() {
            Ok(mut kept) => {
                if kept.is_none() {
                    *kept = Some(pool.acquire().await?);
                }
                Ok(Lent::Kept(kept))
            }
            Err(_) => Ok(Lent::Pooled(pool.acquire().await?)),
        }
    }
}

impl ClaimConn {
    /// Returns the kept connection to the pool, unless a claim is using it right now.
    pub(crate) fn give_back(&self) {
        if let Ok(mut kept) = self.0.try_lock() {
            kept.take();
        }
    }
}

impl Lent<'_> {
    /// The connection to run the claim on.
    pub(crate) fn conn(&mut self) -> Option<&mut sqlx::PgConnection> {
        match self {
            Lent::Kept(kept) => kept.as_mut().map(|c| &mut **c),
            Lent::Pooled(c) => Some(&mut **c),
        }
    }

    /// After an error: the kept connection goes back to the pool (and its release check).
    pub(crate) fn discard(&mut self) {
        if let Lent::Kept(kept) = self {
            kept.take();
        }
    }
}
