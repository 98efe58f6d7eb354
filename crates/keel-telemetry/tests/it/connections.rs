//! The connection snapshot equals a direct pg_stat_activity count taken in the same
//! transaction, with sessions idle in transaction and waiting on a lock present.

use keel_telemetry::report::connection_snapshot;
use keel_testkit::TestDb;
use sqlx::{self, Connection, PgConnection};
use std::time::Duration;

/// (state, wait_event_type) of one client backend.
type Activity = (Option<String>, Option<String>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_matches_a_direct_count_in_the_same_transaction() {
    let Some(t) = TestDb::postgres("keel_telemetry::connections::snapshot", crate::SCHEMAS).await else { return };
    let p = t.db.pg().unwrap();
    sqlx::query("CREATE TABLE keel_lock_probe (id int)").execute(p).await.unwrap();
    // One session holds a lock, idle in transaction; another waits for it.
    let mut holder = PgConnection::connect(&t.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("LOCK TABLE keel_lock_probe IN ACCESS EXCLUSIVE MODE").execute(&mut holder).await.unwrap();
    let url = t.url.clone();
    let waiter = tokio::spawn(async move {
        let mut c = PgConnection::connect(&url).await.unwrap();
        sqlx::query("SELECT count(*) FROM keel_lock_probe").execute(&mut c).await.unwrap();
        c.close().await.ok();
    });
    // Bounded wait until the server reports the waiter as blocked on the lock.
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(p)
            .await
            .unwrap();
            if n >= 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the waiter blocks on the lock");

    let mut conn = PgConnection::connect(&t.url).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let snap = connection_snapshot(&mut tx).await.unwrap();
    // The direct count: raw rows of the same view, counted here.
    let rows: Vec<Activity> =
        sqlx::query_as("SELECT state, wait_event_type FROM pg_stat_activity WHERE backend_type = 'client backend'")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    let count = |f: &dyn Fn(&Activity) -> bool| rows.iter().filter(|r| f(r)).count() as i64;
    let state = |s: &'static str| move |r: &Activity| r.0.as_deref() == Some(s);
    assert_eq!(snap.total, rows.len() as i64);
    assert_eq!(snap.active, count(&state("active")));
    assert_eq!(snap.idle, count(&state("idle")));
    assert_eq!(
        snap.idle_in_transaction,
        count(&|r| matches!(r.0.as_deref(), Some("idle in transaction" | "idle in transaction (aborted)")))
    );
    assert_eq!(snap.waiting_on_locks, count(&|r| r.1.as_deref() == Some("Lock")));
    assert_eq!(snap.state_hidden, count(&|r| r.0.is_none()));
    let max: String = sqlx::query_scalar("SHOW max_connections").fetch_one(&mut *tx).await.unwrap();
    let su: String = sqlx::query_scalar("SHOW superuser_reserved_connections").fetch_one(&mut *tx).await.unwrap();
    // NULL before PostgreSQL 16, which has no reserved_connections.
    let reserved_setting: Option<String> =
        sqlx::query_scalar("SELECT current_setting('reserved_connections', true)").fetch_one(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();

    assert!(snap.waiting_on_locks >= 1 && snap.idle_in_transaction >= 1 && snap.active >= 1, "{snap:?}");
    assert_eq!(snap.max_connections, max.parse::<i64>().unwrap());
    assert_eq!(snap.superuser_reserved_connections, su.parse::<i64>().unwrap());
    let reserved = snap.reserved_connections.unwrap_or(0);
    assert_eq!(snap.usable, snap.max_connections - snap.superuser_reserved_connections - reserved);
    assert_eq!(snap.headroom, snap.usable - snap.total);
    // Headroom in percent to one decimal, from the server's settings and the direct count, in
    // integer tenths rounded half away from zero.
    let usable = max.parse::<i64>().unwrap()
        - su.parse::<i64>().unwrap()
        - reserved_setting.map(|r| r.parse::<i64>().unwrap()).unwrap_or(0);
    let headroom = usable - rows.len() as i64;
    assert!(usable > 0, "{snap:?}");
    let tenths = (2 * headroom.abs() * 1000 + usable) / (2 * usable) * headroom.signum();
    assert_eq!(snap.headroom_pct, tenths as f64 / 10.0, "{headroom} of {usable} usable: {snap:?}");
    assert_eq!(snap.warning, None);

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    waiter.await.unwrap();
    holder.close().await.ok();
    conn.close().await.ok();
}
