//! The shared limiter on both backends: exact decisions, the database clock, isolation, pruning,
//! outages, lock budgets, two instances on one database, and agreement with the in-process
//! limiter on random traces.

use keel_config::DatabaseTarget;
use keel_ratelimit::{
    Decision, FailureMode, FakeClock, KeyedLimiter, LimitKey, Limiter, Outcome, Quota, SharedError, SharedLimiter,
};
use keel_storage::{connect, ConnectMode, Db};
use keel_testkit::TestDb;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::sync::Arc;
use std::time::Duration;

/// 2025-01-01T00:00:00Z in Unix nanoseconds: explicit times for exact assertions.
const BASE: u64 = 1_735_689_600_000_000_000;
const SEC: u64 = 1_000_000_000;

fn quota(s: &str) -> Quota {
    s.parse().unwrap()
}

fn key(s: &str) -> LimitKey {
    LimitKey::user(s)
}

async fn count_rows(db: &Db) -> i64 {
    let q = "SELECT count(*) FROM keel_rate_limits";
    match db {
        Db::Postgres(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
        Db::Sqlite(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
    }
}

async fn first_second_burst(t: TestDb) {
    let l = SharedLimiter::with_quota(t.db.clone(), "admin_api", quota("60/1m,burst=60"));
    for i in 0..60 {
        let d = l.check_at(&key("ann"), Some(BASE)).await.unwrap();
        assert!(d.is_allowed(), "request {i}");
        assert_eq!(d.remaining(), 59 - i);
    }
    let d = l.check_at(&key("ann"), Some(BASE + 400_000_000)).await.unwrap();
    assert!(!d.is_allowed());
    assert_eq!(d.retry_after(), Duration::from_millis(600));
    assert_eq!(d.remaining(), 0);
    assert!(!l.check_at(&key("ann"), Some(BASE + SEC - 1)).await.unwrap().is_allowed());
    assert!(l.check_at(&key("ann"), Some(BASE + SEC)).await.unwrap().is_allowed());
}

async fn retry_after_is_exact(t: TestDb) {
    let l = SharedLimiter::with_quota(t.db.clone(), "p", quota("7/1m,burst=2"));
    let period = 60 * SEC / 7;
    assert!(l.check_at(&key("k"), Some(BASE)).await.unwrap().is_allowed());
    assert!(l.check_at(&key("k"), Some(BASE)).await.unwrap().is_allowed());
    let d = l.check_at(&key("k"), Some(BASE + 12_345)).await.unwrap();
    assert_eq!(d.retry_after(), Duration::from_nanos(period - 12_345));
    let at = BASE + period;
    assert!(!l.check_at(&key("k"), Some(at - 1)).await.unwrap().is_allowed());
    assert!(l.check_at(&key("k"), Some(at)).await.unwrap().is_allowed());
}

async fn uses_the_database_clock(t: TestDb) {
    let q = quota("10/1s");
    let l = SharedLimiter::with_quota(t.db.clone(), "p", q);
    let d = l.check_at(&key("k"), None).await.unwrap();
    assert!(d.is_allowed());
    assert!(d.decided_at() > BASE, "a Unix time from the database, not zero");
    assert_eq!(d.tat(), d.decided_at() + q.emission_interval().as_nanos() as u64);
    match l.check(&key("k")).await {
        Outcome::Decided(d) => assert!(d.is_allowed()),
        other => panic!("{other:?}"),
    }
    let m = l.metrics();
    assert_eq!((m.allowed, m.rejected, m.unavailable, m.keys), (1, 0, 0, None), "check_at is not counted");
}

async fn policies_and_keys_are_separate(t: TestDb) {
    let a = SharedLimiter::with_quota(t.db.clone(), "a", quota("1/1m"));
    let b = SharedLimiter::with_quota(t.db.clone(), "b", quota("1/1m"));
    assert!(a.check_at(&key("k"), Some(BASE)).await.unwrap().is_allowed());
    assert!(!a.check_at(&key("k"), Some(BASE)).await.unwrap().is_allowed());
    assert!(b.check_at(&key("k"), Some(BASE)).await.unwrap().is_allowed(), "same key, other policy");
    assert!(a.check_at(&LimitKey::email("K@x.com"), Some(BASE)).await.unwrap().is_allowed());
    assert!(!a.check_at(&LimitKey::email(" k@X.COM"), Some(BASE)).await.unwrap().is_allowed());
    let v6 = |s: &str| LimitKey::ip(s.parse().unwrap());
    assert!(a.check_at(&v6("2001:db8::1"), Some(BASE)).await.unwrap().is_allowed());
    assert!(!a.check_at(&v6("2001:db8::ffff"), Some(BASE)).await.unwrap().is_allowed(), "one /64");
}

async fn prune_removes_only_idle_rows(t: TestDb) {
    let l = SharedLimiter::with_quota(t.db.clone(), "p", quota("1/1s"));
    let other = SharedLimiter::with_quota(t.db.clone(), "other", quota("1/1s"));
    for i in 0..2_500 {
        l.check_at(&key(&format!("idle{i}")), Some(BASE)).await.unwrap();
    }
    l.check_at(&key("live"), Some(BASE + 10 * SEC)).await.unwrap();
    other.check_at(&key("idle"), Some(BASE)).await.unwrap();
    // At BASE + 10 s the idle rows' buckets (tat = BASE + 1 s) are full again; "live" is not.
    assert_eq!(l.prune(Some(BASE + 10 * SEC)).await.unwrap(), 2_500, "several batches");
    assert_eq!(count_rows(&t.db).await, 2, "the live row and the other policy's row remain");
    let d = l.check_at(&key("live"), Some(BASE + 10 * SEC)).await.unwrap();
    assert!(!d.is_allowed(), "the live row kept its state");
    assert_eq!(l.metrics().pruned_idle, 2_500);
}

async fn prunes_by_itself(t: TestDb) {
    let l = SharedLimiter::with_quota(t.db.clone(), "p", quota("1/1s")).prune_every(Duration::ZERO);
    for i in 0..10 {
        l.check_at(&key(&format!("old{i}")), Some(BASE)).await.unwrap();
    }
    // A decision on the database clock starts a prune (due: every decision, here).
    assert!(matches!(l.check(&key("now")).await, Outcome::Decided(_)));
    l.join_prune().await;
    assert_eq!(count_rows(&t.db).await, 1, "only the row decided just now is left");
}

async fn outage_follows_the_failure_mode(t: TestDb) {
    let closed = SharedLimiter::with_quota(t.db.clone(), "p", quota("1/1s"));
    let open = SharedLimiter::with_quota(t.db.clone(), "p", quota("1/1s")).on_outage(FailureMode::Open);
    t.db.close().await;
    for _ in 0..3 {
        assert_eq!(closed.check(&key("k")).await, Outcome::Unavailable { retry_after: Duration::from_secs(1) });
        assert_eq!(open.check(&key("k")).await, Outcome::Unlimited);
    }
    assert!(matches!(closed.check_at(&key("k"), Some(BASE)).await, Err(SharedError::Database(_))));
    assert_eq!(closed.metrics().unavailable, 3);
    assert_eq!((closed.metrics().allowed, closed.metrics().rejected), (0, 0));
}

/// Two instances, each with its own pool on one database, hammer one key at one instant:
/// together they admit exactly the burst.
async fn two_instances_never_exceed_the_limit(t: TestDb) {
    let target = DatabaseTarget::parse(Some(&t.url)).unwrap();
    let second = connect(&target, ConnectMode::Eager).await.unwrap();
    let q = quota("120/1m,burst=60");
    let a = Arc::new(SharedLimiter::with_quota(t.db.clone(), "public_ingress", q).deadline(Duration::from_secs(30)));
    let b = Arc::new(SharedLimiter::with_quota(second.clone(), "public_ingress", q).deadline(Duration::from_secs(30)));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let l = Arc::clone(if i % 2 == 0 { &a } else { &b });
        tasks.push(tokio::spawn(async move {
            let mut admitted = 0;
            for _ in 0..10 {
                // Lock budget 50 ms: under this contention a caller may get "unavailable";
                // it is retried, never counted as admitted.
                loop {
                    match l.check_at(&LimitKey::ip("198.51.100.7".parse().unwrap()), Some(BASE)).await {
                        Ok(d) => {
                            admitted += usize::from(d.is_allowed());
                            break;
                        }
                        Err(SharedError::LockTimeout(_)) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            admitted
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert_eq!(total, 60, "160 attempts at one instant: exactly the burst, across both instances");
    second.close().await;
}

/// Random traces (several keys, random gaps, random quotas): the database and the in-process
/// limiter agree on every decision and on every header quantity.
async fn same_decisions_as_in_process(t: TestDb) {
    let db = t.db.clone();
    tokio::task::block_in_place(|| {
        let handle = tokio::runtime::Handle::current();
        let mut runner = TestRunner::new(Config { cases: 24, failure_persistence: None, ..Config::default() });
        let case = std::sync::atomic::AtomicU32::new(0);
        let strategy =
            (1u32..100, 1u64..120_000, 1u32..20, proptest::collection::vec((0u8..3, 0u64..2_000_000_000), 1..60));
        runner
            .run(&strategy, |(count, period_ms, burst, events)| {
                let Ok(q) = Quota::new(count, Duration::from_millis(period_ms), burst) else { return Ok(()) };
                let policy = format!("prop{}", case.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
                let clock = FakeClock::new();
                let local: KeyedLimiter<LimitKey, FakeClock> =
                    KeyedLimiter::with_clock(policy.clone(), q, clock.clone());
                let shared = SharedLimiter::with_quota(db.clone(), policy, q);
                let mut now = 0u64;
                for (k, gap) in events {
                    now += gap % (3 * q.emission_interval().as_nanos() as u64 + 1);
                    clock.set(now);
                    let key = LimitKey::user(format!("k{k}"));
                    let a: Decision = local.check(&key);
                    let b: Decision = handle.block_on(shared.check_at(&key, Some(BASE + now))).unwrap();
                    prop_assert_eq!(a.is_allowed(), b.is_allowed());
                    prop_assert_eq!(a.remaining(), b.remaining());
                    prop_assert_eq!(a.retry_after(), b.retry_after());
                    prop_assert_eq!(a.reset_after(), b.reset_after());
                    prop_assert_eq!(a.next_unit_after(), b.next_unit_after());
                    prop_assert_eq!(a.tat() + BASE, b.tat());
                }
                Ok(())
            })
            .unwrap();
    });
}

keel_testkit::backend_tests!(
    first_second_burst,
    retry_after_is_exact,
    uses_the_database_clock,
    policies_and_keys_are_separate,
    prune_removes_only_idle_rows,
    prunes_by_itself,
    outage_follows_the_failure_mode,
    two_instances_never_exceed_the_limit,
    same_decisions_as_in_process,
    clear_forgets_one_key_of_one_policy,
);

/// `clear` empties one key's count in one policy (a success or an unlock), nothing else.
async fn clear_forgets_one_key_of_one_policy(t: TestDb) {
    let l = SharedLimiter::with_quota(t.db.clone(), "sign_in_failures", quota("2/15m"));
    let other = SharedLimiter::with_quota(t.db.clone(), "password_recovery", quota("2/15m"));
    let (ann, bob) = (LimitKey::email("ann@example.com"), LimitKey::email("bob@example.com"));
    for k in [&ann, &bob] {
        for _ in 0..2 {
            assert!(l.check_at(k, Some(BASE)).await.unwrap().is_allowed());
        }
    }
    assert!(other.check_at(&ann, Some(BASE)).await.unwrap().is_allowed());
    assert!(!l.check_at(&ann, Some(BASE)).await.unwrap().is_allowed());
    assert!(l.clear(&LimitKey::email(" Ann@Example.com ")).await.unwrap(), "the same normalised key");
    assert!(!l.clear(&ann).await.unwrap(), "nothing left to clear");
    let d = l.check_at(&ann, Some(BASE)).await.unwrap();
    assert!(d.is_allowed() && d.remaining() == 1, "a full bucket again: {d:?}");
    assert!(!l.check_at(&bob, Some(BASE)).await.unwrap().is_allowed(), "another key keeps its count");
    assert!(other.check_at(&ann, Some(BASE)).await.unwrap().is_allowed(), "another policy keeps its row");
    assert_eq!(count_rows(&t.db).await, 3);
}

/// A row held by another transaction: the decision gives up at the lock budget, distinctly
/// from a quota refusal, and fails closed even for a fail-open policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_hot_key_lock_is_bounded() {
    let Some(t) = TestDb::postgres("shared::postgres_hot_key_lock_is_bounded", crate::SCHEMAS).await else { return };
    let l = SharedLimiter::with_quota(t.db.clone(), "public_ingress", quota("60/1m")).on_outage(FailureMode::Open);
    let k = key("hot");
    assert!(l.check_at(&k, Some(BASE)).await.unwrap().is_allowed());

    let pool = t.db.pg().unwrap();
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM keel_rate_limits WHERE policy = 'public_ingress' AND key = $1 FOR UPDATE")
        .bind(k.storage_key())
        .execute(&mut *holder)
        .await
        .unwrap();
    assert_eq!(l.check_at(&k, Some(BASE)).await, Err(SharedError::LockTimeout(Duration::from_millis(50))));
    assert_eq!(l.check(&k).await, Outcome::Unavailable { retry_after: Duration::from_secs(1) });
    holder.rollback().await.unwrap();

    assert!(l.check_at(&k, Some(BASE)).await.unwrap().is_allowed(), "the key decides again once released");
    // The budget was local to each statement: this session's setting is untouched.
    let lt: String = sqlx::query_scalar("SHOW lock_timeout").fetch_one(pool).await.unwrap();
    assert_eq!(lt, "0");
}

/// SQLite has no row locks; a writer holding the database lock is bounded by the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_busy_database_is_bounded_by_the_deadline() {
    let t = TestDb::sqlite(crate::SCHEMAS).await;
    let l = SharedLimiter::with_quota(t.db.clone(), "p", quota("60/1m")).deadline(Duration::from_millis(100));
    let pool = t.db.sqlite().unwrap();
    let mut holder = pool.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *holder).await.unwrap();
    assert_eq!(l.check(&key("k")).await, Outcome::Unavailable { retry_after: Duration::from_secs(1) });
    sqlx::query("ROLLBACK").execute(&mut *holder).await.unwrap();
    drop(holder);
    assert!(matches!(l.check(&key("k")).await, Outcome::Decided(d) if d.is_allowed()));
}
