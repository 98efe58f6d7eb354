//! The database check against real backends: healthy, hung on a lock or a sleep, a black-hole
//! server, a saturated pool. Postgres tests need `TEST_DATABASE_URL` (see keel-testkit).
//! Real time here, so bounds are generous; the exact deadline logic is proven on virtual time
//! in `deadline.rs`.

use keel_health::{Check, CheckFuture, CheckStatus, DatabaseCheck, HealthConfig, HealthService, OverallStatus};
use keel_storage::Db;
use keel_testkit::TestDb;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::PgPool;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The check for whichever backend `db` is, as a service holding a `Db` builds it.
fn database_check(db: &Db) -> DatabaseCheck {
    match db {
        Db::Postgres(pool) => DatabaseCheck::postgres(pool.clone()),
        Db::Sqlite(pool) => DatabaseCheck::sqlite(pool.clone()),
    }
}

fn service(check: impl Check, deadline: Duration) -> HealthService {
    HealthService::builder(HealthConfig::new(deadline)).check(check).build().unwrap()
}

/// Active backends in this database running exactly `probe`.
async fn running(pool: &PgPool, probe: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query = $1",
    )
    .bind(probe)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Polls `pg_stat_activity` (every 10 ms, for at most 5 s) until `probe`'s count satisfies `ok`.
async fn wait_for(pool: &PgPool, probe: &str, ok: impl Fn(i64) -> bool) -> bool {
    for _ in 0..500 {
        if ok(running(pool, probe).await) {
            return true;
        }
        tokio::time::sleep(ms(10)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_healthy_is_ok() {
    let Some(t) = TestDb::postgres_empty("keel_health::postgres_healthy_is_ok").await else { return };
    let report = service(database_check(&t.db), ms(2_000)).check().await;
    assert_eq!(report.service("database"), Some(CheckStatus::Ok), "{:?}", report.outcomes());
    assert_eq!(report.http_status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_healthy_is_ok() {
    let t = TestDb::sqlite_empty().await;
    let report = service(database_check(&t.db), ms(2_000)).check().await;
    assert_eq!(report.service("database"), Some(CheckStatus::Ok), "{:?}", report.outcomes());
}

const LOCKED_PROBE: &str = "SELECT count(*) FROM health_locked";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lock_wait_times_out_the_server_cancels_it_and_health_recovers() {
    let Some(t) = TestDb::postgres_empty("keel_health::postgres_lock_wait").await else { return };
    let pool = t.db.pg().unwrap().clone();
    sqlx::query("CREATE TABLE health_locked (id int)").execute(&pool).await.unwrap();
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE health_locked IN ACCESS EXCLUSIVE MODE").execute(&mut *holder).await.unwrap();

    let svc = service(database_check(&t.db).with_probe(LOCKED_PROBE).with_timeout(ms(500)), ms(2_000));
    let t0 = Instant::now();
    let run = tokio::spawn({
        let svc = svc.clone();
        async move { svc.check().await }
    });
    // The probe really is stuck on the server (and the matcher below really matches it).
    assert!(wait_for(&pool, LOCKED_PROBE, |n| n == 1).await, "the probe never showed as running");
    let report = run.await.unwrap();
    let took = t0.elapsed();

    assert_eq!(report.status(), OverallStatus::Degraded);
    assert_eq!(report.service("database"), Some(CheckStatus::Timeout));
    assert!(took < ms(1_500), "answered after {took:?}; the check's budget was 500 ms");
    let cause = report.outcomes()[0].cause.clone().unwrap();
    assert!(cause.contains("statement_timeout"), "the server, not only the client, should stop the probe: {cause}");
    // The lock is still held, so only the server-side cancellation can have ended the probe.
    assert!(wait_for(&pool, LOCKED_PROBE, |n| n == 0).await, "the probe kept running after the answer");

    holder.rollback().await.unwrap();
    let report = svc.check().await;
    assert_eq!(report.service("database"), Some(CheckStatus::Ok), "{:?}", report.outcomes());
}

const SLEEP_PROBE: &str = "SELECT pg_sleep(30)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_slow_query_is_cut_off_and_left_running_nowhere() {
    let Some(t) = TestDb::postgres_empty("keel_health::postgres_slow_query").await else { return };
    let pool = t.db.pg().unwrap().clone();
    let svc = service(database_check(&t.db).with_probe(SLEEP_PROBE), ms(400));

    let t0 = Instant::now();
    let report = svc.check().await;
    let took = t0.elapsed();

    assert_eq!(report.service("database"), Some(CheckStatus::Timeout));
    assert!(took < ms(1_400), "answered after {took:?}; the deadline was 400 ms");
    assert_eq!(report.outcomes()[0].detail, Some("database query timed out"));
    assert!(wait_for(&pool, SLEEP_PROBE, |n| n == 0).await, "pg_sleep kept running after the answer");
}

/// A server that accepts connections and never says a word: nothing to cancel on the server,
/// so the client-side budget is what answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_accepts_but_never_answers_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    let opts = PgConnectOptions::new().host("127.0.0.1").port(port).username("keel").database("keel");
    let svc = service(DatabaseCheck::postgres(PgPoolOptions::new().connect_lazy_with(opts)), ms(300));

    let t0 = Instant::now();
    let report = svc.check().await;
    let took = t0.elapsed();

    assert_eq!(report.status(), OverallStatus::Degraded);
    assert_eq!(report.service("database"), Some(CheckStatus::Timeout));
    assert!(took < ms(1_300), "answered after {took:?}; the deadline was 300 ms");
    assert!(accepted.load(Ordering::SeqCst) >= 1, "the check never reached the stub server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_degrades_within_the_deadline() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let opts = PgConnectOptions::new().host("127.0.0.1").port(port).username("keel").database("keel");
    let svc = service(DatabaseCheck::postgres(PgPoolOptions::new().connect_lazy_with(opts)), ms(300));

    let t0 = Instant::now();
    let report = svc.check().await;

    assert_eq!(report.status(), OverallStatus::Degraded);
    // sqlx retries refused connections until the acquire deadline, so a down server shows as a
    // timeout at the budget rather than an instant error.
    assert_eq!(report.service("database"), Some(CheckStatus::Timeout));
    assert!(t0.elapsed() < ms(1_300), "answered after {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_pool_reads_as_timeout_within_the_budget() {
    let t = TestDb::sqlite_empty().await;
    let pool = SqlitePoolOptions::new().max_connections(1).connect(&t.url).await.unwrap();
    let held = pool.acquire().await.unwrap();
    let svc = service(DatabaseCheck::sqlite(pool.clone()).with_timeout(ms(300)), ms(2_000));

    let t0 = Instant::now();
    let report = svc.check().await;

    assert_eq!(report.service("database"), Some(CheckStatus::Timeout));
    assert_eq!(report.outcomes()[0].detail, Some("no database connection in time"));
    assert!(t0.elapsed() < ms(1_300), "answered after {:?}", t0.elapsed());
    drop(held);
    assert_eq!(svc.check().await.service("database"), Some(CheckStatus::Ok));
}

/// Counts how often the wrapped check really runs.
struct Counted(DatabaseCheck, Arc<AtomicUsize>);

impl Check for Counted {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn check(&self, budget: Duration) -> CheckFuture<'_> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.check(budget)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_probes_against_a_slow_postgres_run_one_query() {
    let Some(t) = TestDb::postgres_empty("keel_health::probe_storm").await else { return };
    let runs = Arc::new(AtomicUsize::new(0));
    let check = Counted(database_check(&t.db).with_probe("SELECT pg_sleep(0.3)"), runs.clone());
    let svc = service(check, ms(2_000));

    let reports = futures::future::join_all((0..1_000).map(|_| svc.check())).await;

    assert!(reports.iter().all(|r| r.is_ok()), "{:?}", reports[0].outcomes());
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}
