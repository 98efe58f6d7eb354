//! Idempotent creates: one creation per key however many race, replays, reuse with another
//! request, the 24-hour window, a failed create releasing its key, a held key answering
//! `InProgress`.

use crate::support::{new_invoice, now, org, render, store};
use keel_billing::{Created, Idempotency, ListFilter, Rendered, IDEMPOTENCY_WINDOW, MAX_AMOUNT_MINOR};
use keel_testkit::{backend_tests, TestDb};

backend_tests!(
    racing_creates_with_one_key_create_once,
    a_key_replays_and_refuses_another_request,
    keys_are_forgotten_after_the_window,
    a_failed_create_releases_its_key,
);

fn key(k: &str, hash: &str) -> Idempotency {
    Idempotency { key: k.to_owned(), request_hash: hash.to_owned() }
}

async fn count(t: &TestDb, org: keel_ids::OrgId) -> i64 {
    store(t).list(org, &ListFilter { limit: 1, ..ListFilter::default() }).await.unwrap().total
}

/// Sixteen creates with one key at once (a client retrying while the first is in flight):
/// exactly one creates; every other answers its replay once it commits. It used to be a
/// duplicate-key error (500) for most of them on PostgreSQL.
async fn racing_creates_with_one_key_create_once(t: TestDb) {
    let a = org(&t, "A").await;
    let s = store(&t);
    let at = now();
    let tasks = (0..16).map(|_| {
        let s = s.clone();
        tokio::spawn(async move {
            let idem = key("race", "h1");
            s.create(a, &[new_invoice("Racer", 1)], Some(&idem), at, &render).await.unwrap()
        })
    });
    let answers: Vec<Created> = futures::future::join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    let created: Vec<_> = answers.iter().filter_map(|c| if let Created::New(v) = c { Some(v) } else { None }).collect();
    assert_eq!(created.len(), 1, "exactly one creation: {answers:?}");
    let first = render(created[0]);
    for c in &answers {
        match c {
            Created::New(_) => {}
            Created::Replay(r) => assert_eq!(r, &first),
            other => panic!("every other answer is the replay (the first commits in milliseconds): {other:?}"),
        }
    }
    assert_eq!(count(&t, a).await, 1);
}

async fn a_key_replays_and_refuses_another_request(t: TestDb) {
    let (a, b) = (org(&t, "A").await, org(&t, "B").await);
    let s = store(&t);
    let at = now();
    let idem = key("order-77", "h1");
    let Created::New(v) = s.create(a, &[new_invoice("Acme", 1)], Some(&idem), at, &render).await.unwrap() else {
        panic!("new")
    };
    let first = render(&v);
    assert_eq!(s.find_idempotent(a, &idem, at).await.unwrap(), Some(Created::Replay(first.clone())));
    // The create itself replays too (a retry that missed the lookup).
    assert_eq!(s.create(a, &[new_invoice("Acme", 1)], Some(&idem), at, &render).await.unwrap(), Created::Replay(first));
    let other = key("order-77", "h2");
    assert_eq!(s.find_idempotent(a, &other, at).await.unwrap(), Some(Created::KeyReused));
    assert_eq!(s.create(a, &[new_invoice("Other", 1)], Some(&other), at, &render).await.unwrap(), Created::KeyReused);
    assert_eq!(count(&t, a).await, 1);
    // Keys are per org.
    assert!(s.find_idempotent(b, &idem, at).await.unwrap().is_none());
    assert!(matches!(s.create(b, &[new_invoice("B", 1)], Some(&idem), at, &render).await.unwrap(), Created::New(_)));
}

async fn keys_are_forgotten_after_the_window(t: TestDb) {
    let a = org(&t, "A").await;
    let s = store(&t);
    let at = now();
    let idem = key("daily", "h1");
    let Created::New(first) = s.create(a, &[new_invoice("Acme", 1)], Some(&idem), at, &render).await.unwrap() else {
        panic!("new")
    };
    let inside = at + IDEMPOTENCY_WINDOW - chrono::Duration::seconds(1);
    assert_eq!(s.find_idempotent(a, &idem, inside).await.unwrap(), Some(Created::Replay(render(&first))));
    let after = at + IDEMPOTENCY_WINDOW + chrono::Duration::seconds(1);
    assert_eq!(s.find_idempotent(a, &idem, after).await.unwrap(), None);
    // A different request may take the forgotten key; it then remembers the new answer.
    let again = key("daily", "h2");
    let Created::New(second) = s.create(a, &[new_invoice("New", 1)], Some(&again), after, &render).await.unwrap()
    else {
        panic!("the expired key is taken over")
    };
    assert_ne!(second[0].id, first[0].id);
    assert_eq!(s.find_idempotent(a, &again, after).await.unwrap(), Some(Created::Replay(render(&second))));
    assert_eq!(count(&t, a).await, 2);
}

/// A create that fails stores nothing, its key included: a retry with the key creates.
async fn a_failed_create_releases_its_key(t: TestDb) {
    let a = org(&t, "A").await;
    let s = store(&t);
    let at = now();
    let idem = key("retry-me", "h1");
    // Past the bound: the database refuses it (the API would have answered 422 first).
    let mut huge = new_invoice("Huge", 1);
    huge.total_minor = MAX_AMOUNT_MINOR + 1;
    assert!(s.create(a, &[new_invoice("Fine", 1), huge], Some(&idem), at, &render).await.is_err());
    assert_eq!(count(&t, a).await, 0, "nothing of the batch");
    assert_eq!(s.find_idempotent(a, &idem, at).await.unwrap(), None, "nor the key");
    let created = s.create(a, &[new_invoice("Fine", 1)], Some(&idem), at, &render).await.unwrap();
    assert!(matches!(created, Created::New(ref v) if v.len() == 1), "{created:?}");
}

/// PostgreSQL: while another transaction holds the key (a first request still running), a
/// create waits at most the store's idempotency wait, then answers `InProgress` (keel-api:
/// 409 with Retry-After); once the holder is gone, the key is free. (SQLite serialises every
/// writer on the database lock, so a holder there blocks all writes, not just this key.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_held_key_answers_in_progress() {
    use keel_billing::{BillingStore, PgBillingStore};
    use keel_storage::{sqlx, Db};
    let Some(t) = TestDb::postgres("idempotency::postgres_a_held_key_answers_in_progress", crate::SCHEMAS).await else {
        return;
    };
    let a = org(&t, "A").await;
    let Db::Postgres(pool) = &t.db else { unreachable!("a Postgres TestDb") };
    let s = PgBillingStore::new(pool.clone()).with_idempotency_wait(std::time::Duration::from_millis(50));
    let at = now();
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO keel_idempotency_keys (org_id, key, request_hash, status, response, created_at) VALUES ($1, 'held', 'h1', 0, '', $2)")
        .bind(a.as_uuid())
        .bind(at)
        .execute(&mut *holder)
        .await
        .unwrap();
    let idem = key("held", "h1");
    assert_eq!(s.create(a, &[new_invoice("Waiting", 1)], Some(&idem), at, &render).await.unwrap(), Created::InProgress);
    assert_eq!(count(&t, a).await, 0, "the waiter created nothing");
    // The lock wait bound applied to the claim only: nothing else in the store is affected.
    let Created::New(other) = s.create(a, &[new_invoice("Other key", 1)], None, at, &render).await.unwrap() else {
        panic!("new")
    };
    assert_eq!(other.len(), 1);
    holder.rollback().await.unwrap();
    let created = s.create(a, &[new_invoice("Waiting", 1)], Some(&idem), at, &render).await.unwrap();
    assert!(matches!(created, Created::New(_)), "{created:?}");
    assert_eq!(
        s.find_idempotent(a, &idem, at)
            .await
            .unwrap()
            .map(|c| matches!(c, Created::Replay(Rendered { status: 201, .. }))),
        Some(true)
    );
}
