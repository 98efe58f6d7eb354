//! Two caches sharing one Postgres database through LISTEN/NOTIFY: a write and invalidation in
//! one is not served stale by the other once the notification arrives (bounded wait), and a
//! listener that loses its connection flushes after reconnecting.

use crate::SETTINGS;
use crate::{org, tag};
use keel_ids::OrgId;
use keel_orgcache::{BusTask, OrgCache, PgBus, PgBusOptions, Provenance};
use keel_storage::Db;
use keel_testkit::TestDb;
use std::time::{Duration, Instant};

/// How long a notification may take to arrive before the test fails.
const BOUND: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, fut).await.unwrap_or_else(|_| panic!("{what} did not happen within {BOUND:?}"))
}

async fn setup(db: &Db) {
    sqlx::query("CREATE TABLE org_settings (org uuid PRIMARY KEY, currency text NOT NULL)")
        .execute(db.pg().unwrap())
        .await
        .unwrap();
}

/// The read path an api handler would have: settings through the cache.
async fn currency(cache: &OrgCache, db: &Db, o: OrgId) -> (String, Provenance) {
    let pool = db.pg().unwrap().clone();
    let v = cache
        .get_or_load(o, SETTINGS, "settings", &[tag("settings")], || async move {
            sqlx::query_scalar::<_, String>("SELECT currency FROM org_settings WHERE org = $1")
                .bind(o.as_uuid())
                .fetch_one(&pool)
                .await
        })
        .await
        .unwrap();
    (v.value().clone(), v.provenance())
}

async fn instance(db: &Db) -> (OrgCache, BusTask) {
    instance_on(db, keel_orgcache::CHANNEL).await
}

async fn instance_on(db: &Db, channel: &'static str) -> (OrgCache, BusTask) {
    let cache = OrgCache::new(&crate::config());
    let options = PgBusOptions { heartbeat: Duration::from_secs(1), channel, ..PgBusOptions::default() };
    let task = PgBus::connect_with(&cache, db.pg().unwrap(), options).unwrap();
    within("listener ready", task.ready()).await;
    (cache, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_one_instance_is_not_served_stale_by_the_other() {
    let Some(t) = TestDb::postgres("orgcache::pg::write_is_not_served_stale", crate::SCHEMAS).await else { return };
    setup(&t.db).await;
    let (a, _ta) = instance(&t.db).await;
    let (b, tb) = instance(&t.db).await;
    let o = org();
    sqlx::query("INSERT INTO org_settings VALUES ($1, 'USD')")
        .bind(o.as_uuid())
        .execute(t.db.pg().unwrap())
        .await
        .unwrap();

    assert_eq!(currency(&a, &t.db, o).await, ("USD".into(), Provenance::Loaded));
    assert_eq!(currency(&b, &t.db, o).await, ("USD".into(), Provenance::Loaded));
    assert_eq!(currency(&b, &t.db, o).await, ("USD".into(), Provenance::Hit), "b serves from its cache");

    // Instance a handles a write: update the row, then invalidate (which notifies).
    let handled = tb.status().handled;
    sqlx::query("UPDATE org_settings SET currency = 'EUR' WHERE org = $1")
        .bind(o.as_uuid())
        .execute(t.db.pg().unwrap())
        .await
        .unwrap();
    let sent = Instant::now();
    a.invalidate_tag(o, &tag("settings")).await;
    within("b receiving a's invalidation", tb.wait_until(|s| s.handled > handled)).await;
    eprintln!("notification delivered in {:?}", sent.elapsed());

    assert_eq!(currency(&b, &t.db, o).await, ("EUR".into(), Provenance::Loaded), "b reloads, never the stale USD");
    assert_eq!(currency(&a, &t.db, o).await, ("EUR".into(), Provenance::Loaded));
    assert_eq!(a.bus_stats().published, 1);
    assert_eq!(b.bus_stats().malformed + b.bus_stats().gaps, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_loses_its_connection_reconnects_and_flushes() {
    let Some(t) = TestDb::postgres("orgcache::pg::reconnect_flushes", crate::SCHEMAS).await else { return };
    setup(&t.db).await;
    let (a, _ta) = instance(&t.db).await;
    let (b, tb) = instance(&t.db).await;
    let o = org();
    sqlx::query("INSERT INTO org_settings VALUES ($1, 'USD')")
        .bind(o.as_uuid())
        .execute(t.db.pg().unwrap())
        .await
        .unwrap();
    currency(&b, &t.db, o).await;
    assert_eq!(currency(&b, &t.db, o).await.1, Provenance::Hit);

    // Kill b's listener connection: anything published meanwhile would be lost.
    let resyncs = tb.status().resyncs;
    let killed: Vec<bool> =
        sqlx::query_scalar("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1")
            .bind(PgBus::listener_name(&b))
            .fetch_all(t.db.pg().unwrap())
            .await
            .unwrap();
    assert_eq!(killed, [true], "exactly one listener connection per cache");
    within("b reconnecting", tb.wait_until(|s| s.resyncs > resyncs && s.connected)).await;
    assert_eq!(currency(&b, &t.db, o).await.1, Provenance::Loaded, "flushed after the reconnect");

    // And the new connection listens.
    let handled = tb.status().handled;
    a.flush_org(o, None).await;
    within("b receiving after the reconnect", tb.wait_until(|s| s.handled > handled)).await;
    assert_eq!(currency(&b, &t.db, o).await.1, Provenance::Loaded);
}

/// Two services on one database, each on its own channel: neither hears the other. A listener
/// receives notifications in commit order, so if `b` listened to `c`'s channel too, the first
/// message it handled would be `c`'s flush of `o`, sent before `a`'s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_another_channel_are_not_told() {
    let Some(t) = TestDb::postgres("orgcache::pg::channels", crate::SCHEMAS).await else { return };
    let (a, _ta) = instance(&t.db).await;
    let (b, tb) = instance(&t.db).await;
    let (c, _tc) = instance_on(&t.db, "orgcache_other_service").await;
    let (o, p) = (org(), org());
    b.insert(o, SETTINGS, "s", &[], 1u64).await.unwrap();

    let handled = tb.status().handled;
    c.flush_org(o, None).await;
    a.flush_org(p, None).await;
    within("b receiving a's flush", tb.wait_until(|s| s.handled > handled)).await;
    assert!(b.get::<u64>(o, SETTINGS, "s").await.is_some(), "b acted on another channel's message");
    assert_eq!(c.bus_stats().published, 1);
}
