//! The SQLite worker's own write connection, kept between its writes.
//!
//! The worker's writes (claim, heartbeat, finish, release, rescue) take the file's write turn
//! ([`super::sqlite_turn`]) one after another. Each used to borrow a pooled connection, which
//! cost, on SQLite's single writer:
//! - keel-storage's release check on the way back (`BEGIN`, then `ROLLBACK`: two more hops to
//!   the connection's thread);
//! - a cold page cache: in WAL mode a connection drops its whole page cache when it sees that
//!   another connection wrote since its last transaction, so claims and finishes alternating
//!   over the pool's connections re-read and re-allocated their pages every time.
//!
//! One kept connection for all of them skips both (issue #19, measured in `docs/benchmarks.md`).
//! Its transactions always end before it is put back: a write that fails or is dropped midway
//! hands it to the pool instead, whose release check rolls back or closes it.
//!
//! It is kept only while the worker claims: a claim arms it, [`Writer::give_back`] (the
//! worker's claim loops stopped) disarms it, and a write finishing while disarmed returns it
//! to the pool, so a host closing its pool never waits for a stopped worker's connection.
//! Pools smaller than [`MIN_POOL_TO_KEEP`] keep nothing.

use super::sqlite_turn::WriteTurn;
use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection, SqlitePool};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

/// The smallest pool that keeps a write connection: readers, the host's enqueues and the
/// operators' verbs still have two between them.
pub(crate) const MIN_POOL_TO_KEEP: u32 = 3;

/// The turn on the file and the store's kept connection; clones share both.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    turn: WriteTurn,
    kept: Arc<Mutex<Option<PoolConnection<Sqlite>>>>,
    armed: Arc<AtomicBool>,
}

/// One write's turn and connection. [`Write::done`] after its transaction committed (or
/// rolled back); dropped without it, the connection goes back to the pool.
pub(crate) struct Write {
    _turn: OwnedMutexGuard<()>,
    conn: PoolConnection<Sqlite>,
    writer: Writer,
}

impl Writer {
    pub(crate) fn new(turn: WriteTurn) -> Self {
        Self { turn, kept: Arc::default(), armed: Arc::default() }
    }

    /// Waits for the turn, then lends the kept connection (or a pooled one). A claim passes
    /// `claim: true`, which arms the keeping.
    pub(crate) async fn lend(&self, pool: &SqlitePool, claim: bool) -> Result<Write, sqlx::Error> {
        let turn = self.turn.clone().lock_owned().await;
        if claim && pool.options().get_max_connections() >= MIN_POOL_TO_KEEP {
            self.armed.store(true, Ordering::SeqCst);
        }
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner()).take();
        let conn = match kept {
            Some(c) => c,
            None => pool.acquire().await?,
        };
        Ok(Write { _turn: turn, conn, writer: self.clone() })
    }

    /// The worker's claim loops stopped: the kept connection goes back to the pool.
    pub(crate) fn give_back(&self) {
        self.armed.store(false, Ordering::SeqCst);
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(kept);
    }
}

impl Write {
    /// The connection to begin the write's transaction on.
    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    /// The transaction ended: keep the connection for the next write while armed.
    pub(crate) fn done(self) {
        let Write { _turn, conn, writer } = self;
        if writer.armed.load(Ordering::SeqCst) {
            *writer.kept.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn);
        }
    }
}
