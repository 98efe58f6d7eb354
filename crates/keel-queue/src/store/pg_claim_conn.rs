//! The claim loops' own PostgreSQL connections, kept between claims.
//!
//! Taken from the pool for every claim, a connection cost two extra round trips: sqlx's ping
//! when it is lent and keel-storage's release check (`SELECT now() <> statement_timestamp()`)
//! when it comes back. A claim is one statement in an implicit transaction, so it can never
//! leave a transaction open, and keeping the connection loses nothing the check protects.
//! Measured (issue #19): a burn-down claiming 8 jobs at a time went from 7.2k to 8.3k jobs/s
//! with the round trips gone, and the claim after an idle worker's wakeup lost one.
//!
//! Each claim loop claiming at once (the primary and, through a backlog, up to three helpers)
//! keeps one, up to all but four of the pool's connections (the wakeup listener holds one of
//! them); a claim that finds every kept connection busy takes a pooled one as before. Small
//! pools keep none: a connection is kept only when the pool has at least [`MIN_POOL_TO_KEEP`]
//! of them besides the listener's, so a worker on a small pool can still finish what it
//! claims. A connection no claim used for [`KEPT_IDLE`] is let go at
//! the next claim, so a backlog's end returns the helpers' connections. Any error drops the
//! connection; the next claim keeps a fresh one. When the worker's claim loops stop, all are
//! let go ([`crate::JobStore::claims_stopped`]): a pool's `close` waits for every connection
//! lent, and a host closing its pool must not hang on a worker it has stopped but not yet
//! dropped. A connection let go is closed, not pooled: it runs its claims on generic plans, a
//! session setting no other user of the pool should inherit ([`generic_plans`]).

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use std::sync::Arc;
use tokio::sync::{Mutex, MutexGuard};

/// The smallest pool whose claim loop keeps a connection of its own: the completer, the
/// heartbeat, the rescuer and the operators' verbs still have three between them.
pub(crate) const MIN_POOL_TO_KEEP: u32 = 4;

/// The wakeup listener's connection, taken from the same pool for as long as the worker runs
/// (`pg_listen.rs`).
const LISTENER: u32 = 1;

/// Claim loops of one queue at most (`claim_loops` in the worker): a connection each.
const MAX_KEPT: usize = 4;

/// A kept connection unused this long is let go at the next claim. Helper loops claim only
/// through a backlog, so their connections leave the worker about this long after it ends;
/// the primary loop claims at least every poll and keeps its own.
const KEPT_IDLE: TimeDelta = TimeDelta::seconds(1);

/// One kept connection and when a claim last used it.
#[derive(Debug)]
pub(crate) struct Kept {
    conn: PoolConnection<Postgres>,
    used: DateTime<Utc>,
}

type Slot = Mutex<Option<Kept>>;

/// The kept connections, one per claim loop claiming at once; clones share them.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClaimConn(Arc<[Slot; MAX_KEPT]>);

/// A connection for one claim: a kept one, or one lent by the pool for this claim alone.
pub(crate) enum Lent<'a> {
    Kept(MutexGuard<'a, Option<Kept>>),
    Pooled(PoolConnection<Postgres>),
}

/// How many connections a pool of `max` spares its claim loops: all but the listener's and
/// three more (see [`MIN_POOL_TO_KEEP`]), at most one per loop.
fn kept_slots(max: u32) -> usize {
    (max.saturating_sub(LISTENER + MIN_POOL_TO_KEEP - 1) as usize).min(MAX_KEPT)
}

impl ClaimConn {
    /// A free kept connection (taking one from the pool the first time a slot is used), else
    /// a pooled one. Lets go of the other kept connections unused since [`KEPT_IDLE`]
    /// before `now`.
    pub(crate) async fn lend<'a>(&'a self, pool: &PgPool, now: DateTime<Utc>) -> Result<Lent<'a>, sqlx::Error> {
        let slots = kept_slots(pool.options().get_max_connections());
        let mut lent = None;
        for slot in &self.0[..slots] {
            let Ok(mut kept) = slot.try_lock() else { continue };
            if lent.is_none() {
                if kept.is_none() {
                    *kept = Some(Kept { conn: generic_plans(pool.acquire().await?).await?, used: now });
                }
                if let Some(k) = kept.as_mut() {
                    k.used = now;
                }
                lent = Some(Lent::Kept(kept));
            } else if kept.as_ref().is_some_and(|k| now - k.used >= KEPT_IDLE) {
                kept.take();
            }
        }
        match lent {
            Some(lent) => Ok(lent),
            None => Ok(Lent::Pooled(pool.acquire().await?)),
        }
    }
}

/// Sets a kept connection to run its claims on their cached generic plan.
///
/// PostgreSQL plans a prepared statement anew on every call while it estimates its generic
/// plan to cost more than the plans made for the actual values, and for the claim it always
/// does (`LIMIT $3` is guessed at a tenth of the table). Yet both plans are the same: the claim
/// index, read up to the limit, then the primary key. Planning was 0.2 ms of a 0.75 ms claim
/// of 8 jobs (issue #19). The setting is the session's, so the connection is closed rather than
/// given back to the pool when the claim loop lets go of it: no other caller inherits it.
async fn generic_plans(mut conn: PoolConnection<Postgres>) -> Result<PoolConnection<Postgres>, sqlx::Error> {
    // Marked before the setting is sent: a claim dropped while it is in flight must not give
    // the connection back to the pool with it.
    conn.close_on_drop();
    sqlx::query("SET plan_cache_mode = force_generic_plan").execute(&mut *conn).await?;
    Ok(conn)
}

impl ClaimConn {
    /// Lets the kept connections go (closed), except one a claim is using right now.
    pub(crate) fn give_back(&self) {
        for slot in self.0.iter() {
            if let Ok(mut kept) = slot.try_lock() {
                kept.take();
            }
        }
    }
}

impl Lent<'_> {
    /// The connection to run the claim on.
    pub(crate) fn conn(&mut self) -> Option<&mut sqlx::PgConnection> {
        match self {
            Lent::Kept(kept) => kept.as_mut().map(|k| &mut *k.conn),
            Lent::Pooled(c) => Some(&mut **c),
        }
    }

    /// After an error: the kept connection is closed; the next claim keeps a fresh one.
    pub(crate) fn discard(&mut self) {
        if let Lent::Kept(kept) = self {
            kept.take();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{kept_slots, ClaimConn, Lent, KEPT_IDLE};
    use crate::store::{Claim, JobStore};
    use crate::{NewJob, PgStore};
    use keel_storage::Db;
    use keel_testkit::TestDb;
    use std::time::Duration;

    /// The kept connection runs the claim on one generic plan, never planning it per call, and
    /// the setting leaves with it: once the claims stop, no pooled connection carries it.
    #[tokio::test]
    async fn the_kept_connection_plans_the_claim_once_and_takes_its_setting_away() {
        let name = "pg_claim_conn::the_kept_connection_plans_the_claim_once_and_takes_its_setting_away";
        let Some(t) = TestDb::postgres(name, &[&crate::SCHEMA]).await else { return };
        let Db::Postgres(pool) = t.db.clone() else { panic!("a PostgreSQL test database") };
        let store = PgStore::new(pool.clone());
        let jobs = (0..20).map(|i| NewJob::new("k.x", &serde_json::json!({ "i": i })).unwrap()).collect();
        store.enqueue_many(jobs).await.unwrap();
        let claim = || Claim {
            queue: "default".into(),
            task: "background_job".into(),
            limit: 2,
            lease: Duration::from_secs(30),
            worker: "w".into(),
            after: None,
        };
        for _ in 0..8 {
            assert_eq!(store.claim(claim()).await.unwrap().len(), 2);
        }
        {
            let mut lent = store.claim_conn.lend(&store.pool, chrono::Utc::now()).await.unwrap();
            let conn = lent.conn().expect("the kept connection");
            let (generic, custom): (i64, i64) = sqlx::query_as(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE 'WITH RECURSIVE bands%'",
            )
            .fetch_one(&mut *conn)
            .await
            .unwrap();
            // Without the setting PostgreSQL plans the first five calls for their values and
            // then goes on doing so, the claim's generic plan being estimated dearer.
            assert_eq!((generic, custom), (8, 0), "the claim ran on its generic plan every time");
        }

        store.claims_stopped();
        let max = pool.options().get_max_connections();
        let mut all = Vec::new();
        for _ in 0..max {
            let mut conn = pool.acquire().await.unwrap();
            let mode: String = sqlx::query_scalar("SHOW plan_cache_mode").fetch_one(&mut *conn).await.unwrap();
            assert_eq!(mode, "auto", "a pooled connection inherited the claim connection's setting");
            all.push(conn);
        }
    }

    /// A pool spares its claim loops all but the listener's connection and three more, one
    /// per loop at most.
    #[test]
    fn pools_spare_all_but_four_connections_one_per_claim_loop() {
        let kept: Vec<usize> = [2, 3, 4, 5, 6, 10, 100].into_iter().map(kept_slots).collect();
        assert_eq!(kept, [0, 0, 0, 1, 2, 4, 4]);
    }

    /// Claims at once each get a kept connection while the pool spares them, then pooled ones;
    /// a kept connection no claim used for `KEPT_IDLE` goes at the next claim.
    #[tokio::test]
    async fn claims_at_once_keep_one_connection_each_until_idle() {
        let name = "pg_claim_conn::claims_at_once_keep_one_connection_each_until_idle";
        let Some(t) = TestDb::postgres(name, &[&crate::SCHEMA]).await else { return };
        let Db::Postgres(pool) = t.db.clone() else { panic!("a PostgreSQL test database") };
        assert_eq!(kept_slots(pool.options().get_max_connections()), 4, "the test pool spares four");
        let conns = ClaimConn::default();
        let t0 = chrono::Utc::now();
        let mut lent = Vec::new();
        for _ in 0..5 {
            lent.push(conns.lend(&pool, t0).await.unwrap());
        }
        let kinds: Vec<bool> = lent.iter().map(|l| matches!(l, Lent::Kept(_))).collect();
        assert_eq!(kinds, [true, true, true, true, false], "four kept, the fifth claim pooled");
        drop(lent);
        let occupied = |c: &ClaimConn| c.0.iter().map(|s| s.try_lock().unwrap().is_some()).collect::<Vec<_>>();

        // One claim at a time from now on (the primary loop alone): it takes the first slot.
        drop(conns.lend(&pool, t0 + KEPT_IDLE / 2).await.unwrap());
        assert_eq!(occupied(&conns), [true; 4], "not idle long enough to go");
        drop(conns.lend(&pool, t0 + KEPT_IDLE + KEPT_IDLE / 4).await.unwrap());
        assert_eq!(occupied(&conns), [true, false, false, false], "the idle ones went, the used one stayed");
        conns.give_back();
        assert_eq!(occupied(&conns), [false; 4]);
    }
}
