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
//! still finish what it claims. Any error drops it; the next claim takes a fresh one. When the
//! worker's claim loops stop, it is let go too ([`crate::JobStore::claims_stopped`]): a pool's
//! `close` waits for every connection lent, and a host closing its pool must not hang on a
//! worker it has stopped but not yet dropped. A connection let go is closed, not pooled: it
//! runs its claims on generic plans, a session setting no other user of the pool should
//! inherit ([`generic_plans`]).

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
                    *kept = Some(generic_plans(pool.acquire().await?).await?);
                }
                Ok(Lent::Kept(kept))
            }
            Err(_) => Ok(Lent::Pooled(pool.acquire().await?)),
        }
    }
}

/// Sets the kept connection to run its claims on their cached generic plan.
///
/// PostgreSQL plans a prepared statement anew on every call while it estimates its generic
/// plan to cost more than the plans made for the actual values, and for the claim it always
/// does (`LIMIT $3` is guessed at a tenth of the table). Yet both plans are the same: the claim
/// index, read up to the limit, then the primary key. Planning was 0.2 ms of a 0.75 ms claim
/// of 8 jobs (issue #19). The setting is the session's, so the connection is closed rather than
/// given back to the pool when the claim loop lets go of it: no other caller inherits it.
async fn generic_plans(mut conn: PoolConnection<Postgres>) -> Result<PoolConnection<Postgres>, sqlx::Error> {
    sqlx::query("SET plan_cache_mode = force_generic_plan").execute(&mut *conn).await?;
    conn.close_on_drop();
    Ok(conn)
}

impl ClaimConn {
    /// Lets the kept connection go (closed), unless a claim is using it right now.
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

    /// After an error: the kept connection is closed; the next claim keeps a fresh one.
    pub(crate) fn discard(&mut self) {
        if let Lent::Kept(kept) = self {
            kept.take();
        }
    }
}

#[cfg(test)]
mod tests {
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
            let mut lent = store.claim_conn.lend(&store.pool).await.unwrap();
            let conn = lent.conn().expect("the kept connection");
            let (generic, custom): (i64, i64) = sqlx::query_as(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE 'WITH next AS%'",
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
}
