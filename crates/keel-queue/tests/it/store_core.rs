//! Conformance: enqueue, dedupe, claim, leases and fencing, retries, rescue, release.

use crate::support::{capture_logs, claim, claim_all, exec, fixture, within};
use keel_ids::OrgId;
use keel_queue::{
    ClaimCursor, Clock, Enqueued, Finish, Finished, JobFilter, JobState, NewJob, Outcome, PgStore, QueueError,
    SqliteStore,
};
use keel_storage::Db;
use keel_testkit::{backend_tests, TestDb};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

backend_tests!(
    enqueue_round_trips_every_field,
    enqueue_in_caller_transaction_exists_only_if_committed,
    a_job_enqueued_again_after_it_completed_is_refused,
    bulk_enqueue_inserts_thousands_and_reports_duplicates,
    scheduled_job_waits_for_run_at,
    dedupe_blocks_only_while_active,
    hundred_concurrent_enqueues_one_key_leave_one_active_job,
    claim_orders_by_priority_then_run_at_then_id,
    claim_after_a_cursor_takes_only_jobs_ordered_after_it,
    claims_take_due_jobs_in_order_across_bands_of_jobs_scheduled_later,
    a_claim_whose_upper_bands_fail_still_hands_out_the_rest_of_the_cursor_band,
    concurrent_claimers_never_share_a_job,
    stale_token_cannot_finish_a_rescued_job,
    a_batch_of_completions_refuses_only_its_stale_leases,
    a_claim_lost_in_a_server_crash_never_lends_its_token_again,
    heartbeat_extends_the_lease,
    retries_back_off_then_dead_letter,
    a_claimed_job_is_the_job_as_stored,
    permanent_and_unprocessable_failures,
    rescue_on_last_attempt_dead_letters_as_stuck,
    release_gives_the_attempt_back,
    bad_input_is_refused_with_the_field_named,
    wakeup_fires_on_enqueue,
);

async fn enqueue_round_trips_every_field(t: TestDb) {
    let f = fixture(t);
    let org = OrgId::generate();
    let job = NewJob::new("email.send", &json!({"to": "jane@example.com", "n": 1}))
        .unwrap()
        .queue("mail")
        .priority(-3)
        .max_attempts(7)
        .dedupe_key("welcome:1")
        .org(org);
    let id = f.store.enqueue(job).await.unwrap();
    assert!(matches!(id, Enqueued::Created(_)));
    let got = f.store.get(id.id()).await.unwrap().unwrap();
    assert_eq!(got.kind, "email.send");
    assert_eq!(got.queue, "mail");
    assert_eq!(got.priority, -3);
    assert_eq!(got.max_attempts, 7);
    assert_eq!(got.attempt, 0);
    assert_eq!(got.state, JobState::Pending);
    assert_eq!(got.org, Some(org));
    assert_eq!(got.dedupe_key.as_deref(), Some("welcome:1"));
    assert_eq!(got.payload_value(), json!({"to": "jane@example.com", "n": 1}));
    assert_eq!(got.run_at, f.clock.now());
    assert_eq!(got.created_at, f.clock.now());
    assert!(got.lease().is_none());
    assert!(f.store.get(keel_queue::JobId::generate()).await.unwrap().is_none());
}

async fn enqueue_in_caller_transaction_exists_only_if_committed(t: TestDb) {
    let f = fixture(t);
    match &f.t.db {
        Db::Postgres(pool) => {
            let pg = PgStore::new(pool.clone());
            let mut tx = pool.begin().await.unwrap();
            let kept = pg.enqueue_in(&mut tx, NewJob::new("a.b", &json!({})).unwrap()).await.unwrap();
            tx.commit().await.unwrap();
            let mut tx = pool.begin().await.unwrap();
            let dropped = pg.enqueue_in(&mut tx, NewJob::new("a.b", &json!({})).unwrap()).await.unwrap();
            let many = pg
                .enqueue_many_in(&mut tx, (0..3).map(|_| NewJob::new("a.b", &json!({})).unwrap()).collect())
                .await
                .unwrap();
            tx.rollback().await.unwrap();
            assert!(f.store.get(kept.id()).await.unwrap().is_some());
            assert!(f.store.get(dropped.id()).await.unwrap().is_none());
            for m in many {
                assert!(f.store.get(m.id()).await.unwrap().is_none());
            }
        }
        Db::Sqlite(pool) => {
            let lite = SqliteStore::new(pool.clone());
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
            let kept = lite.enqueue_in(&mut tx, NewJob::new("a.b", &json!({})).unwrap()).await.unwrap();
            tx.commit().await.unwrap();
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
            let dropped = lite.enqueue_in(&mut tx, NewJob::new("a.b", &json!({})).unwrap()).await.unwrap();
            let many = lite
                .enqueue_many_in(&mut tx, (0..3).map(|_| NewJob::new("a.b", &json!({})).unwrap()).collect())
                .await
                .unwrap();
            tx.rollback().await.unwrap();
            assert!(f.store.get(kept.id()).await.unwrap().is_some());
            assert!(f.store.get(dropped.id()).await.unwrap().is_none());
            for m in many {
                assert!(f.store.get(m.id()).await.unwrap().is_none());
            }
        }
    }
}

async fn bulk_enqueue_inserts_thousands_and_reports_duplicates(t: TestDb) {
    let f = fixture(t);
    let held = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().dedupe_key("held")).await.unwrap();
    let mut jobs: Vec<NewJob> = (0..6000).map(|i| NewJob::new("k.x", &json!({ "i": i })).unwrap()).collect();
    jobs.push(NewJob::new("k.x", &json!({})).unwrap().dedupe_key("held"));
    jobs.push(NewJob::new("k.x", &json!({})).unwrap().dedupe_key("twice"));
    jobs.push(NewJob::new("k.x", &json!({})).unwrap().dedupe_key("twice"));
    let out = f.store.enqueue_many(jobs).await.unwrap();
    assert_eq!(out.len(), 6003);
    assert!(out[..6000].iter().all(|e| !e.is_duplicate()));
    assert_eq!(out[6000], Enqueued::Duplicate(held.id()));
    assert!(!out[6001].is_duplicate());
    assert_eq!(out[6002], Enqueued::Duplicate(out[6001].id()));
    let snap = f.store.snapshot().await.unwrap();
    assert_eq!(snap.counts.pending, 6002);
    // A bad job anywhere refuses the whole batch before anything is written.
    let bad = vec![NewJob::new("k.x", &json!({})).unwrap(), NewJob::new("Bad Kind", &json!({})).unwrap()];
    assert!(matches!(f.store.enqueue_many(bad).await, Err(QueueError::Invalid { field: "job kind", .. })));
    assert_eq!(f.store.snapshot().await.unwrap().counts.pending, 6002);
}

async fn scheduled_job_waits_for_run_at(t: TestDb) {
    let f = fixture(t);
    let later = f.clock.now() + chrono::Duration::minutes(10);
    let id = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().run_at(later)).await.unwrap().id();
    assert!(claim_all(&f.store, "default", 10).await.is_empty());
    f.clock.advance(Duration::from_secs(599));
    assert!(claim_all(&f.store, "default", 10).await.is_empty());
    f.clock.advance(Duration::from_secs(1));
    let got = claim_all(&f.store, "default", 10).await;
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), vec![id]);
}

async fn dedupe_blocks_only_while_active(t: TestDb) {
    let f = fixture(t);
    let job = || NewJob::new("pw.reset", &json!({})).unwrap().dedupe_key("jane");
    let first = f.store.enqueue(job()).await.unwrap();
    assert_eq!(f.store.enqueue(job()).await.unwrap(), Enqueued::Duplicate(first.id()));
    // Another kind, or another tenant, does not collide.
    assert!(!f
        .store
        .enqueue(NewJob::new("pw.other", &json!({})).unwrap().dedupe_key("jane"))
        .await
        .unwrap()
        .is_duplicate());
    assert!(!f.store.enqueue(job().org(OrgId::generate())).await.unwrap().is_duplicate());
    // Processing still holds the key.
    let claimed = claim_all(&f.store, "default", 10).await;
    let lease = claimed.iter().find(|j| j.id == first.id()).unwrap().lease().unwrap();
    assert_eq!(f.store.enqueue(job()).await.unwrap(), Enqueued::Duplicate(first.id()));
    // Completed frees it.
    let r = f.store.finish(vec![Finish { lease, outcome: Outcome::Completed }]).await.unwrap();
    assert_eq!(r, vec![Finished::Accepted(JobState::Completed)]);
    let second = f.store.enqueue(job()).await.unwrap();
    assert!(!second.is_duplicate());
    // Failed and dead-lettered free it too.
    let lease =
        claim_all(&f.store, "default", 10).await.into_iter().find(|j| j.id == second.id()).unwrap().lease().unwrap();
    f.store.finish(vec![Finish { lease, outcome: Outcome::Failed { error: "no".into() } }]).await.unwrap();
    let third = f.store.enqueue(job()).await.unwrap();
    assert!(!third.is_duplicate());
    let lease =
        claim_all(&f.store, "default", 10).await.into_iter().find(|j| j.id == third.id()).unwrap().lease().unwrap();
    f.store.finish(vec![Finish { lease, outcome: Outcome::DeadLetter { error: "bad".into() } }]).await.unwrap();
    assert!(!f.store.enqueue(job()).await.unwrap().is_duplicate());
}

async fn hundred_concurrent_enqueues_one_key_leave_one_active_job(t: TestDb) {
    let f = fixture(t);
    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = f.store.clone();
        tasks.push(tokio::spawn(async move {
            store.enqueue(NewJob::new("pw.reset", &json!({ "i": i })).unwrap().dedupe_key("jane@example.com")).await
        }));
    }
    let mut ids = HashSet::new();
    let mut created = 0;
    for t in tasks {
        let e = t.await.unwrap().unwrap();
        created += usize::from(!e.is_duplicate());
        ids.insert(e.id());
    }
    assert_eq!(created, 1, "exactly one enqueue inserted");
    assert_eq!(ids.len(), 1, "every caller got the one job's id");
    let active = f.store.list(JobFilter { kind: Some("pw.reset".into()), ..Default::default() }).await.unwrap();
    assert_eq!(active.len(), 1);
    assert!(active[0].state.is_active());
}

async fn claim_orders_by_priority_then_run_at_then_id(t: TestDb) {
    let f = fixture(t);
    let t0 = f.clock.now();
    let a = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().priority(5)).await.unwrap().id();
    let b = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().priority(0).run_at(t0)).await.unwrap().id();
    let c = f
        .store
        .enqueue(NewJob::new("k.x", &json!({})).unwrap().priority(0).run_at(t0 - chrono::Duration::seconds(5)))
        .await
        .unwrap()
        .id();
    let d = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().priority(0).run_at(t0)).await.unwrap().id();
    let e = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().priority(-1)).await.unwrap().id();
    let other =
        f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().queue("other").priority(-9)).await.unwrap().id();
    let first = claim_all(&f.store, "default", 2).await;
    assert_eq!(first.iter().map(|j| j.id).collect::<Vec<_>>(), vec![e, c]);
    let rest = claim_all(&f.store, "default", 10).await;
    assert_eq!(rest.iter().map(|j| j.id).collect::<Vec<_>>(), vec![b, d, a]);
    assert!(rest
        .iter()
        .all(|j| j.state == JobState::Processing && j.attempt == 1 && j.locked_by.as_deref() == Some("test-worker")));
    assert_eq!(claim_all(&f.store, "other", 10).await[0].id, other);
}

async fn claim_after_a_cursor_takes_only_jobs_ordered_after_it(t: TestDb) {
    let f = fixture(t);
    let t0 = f.clock.now();
    let early = t0 - chrono::Duration::seconds(5);
    let a = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().priority(0).run_at(early)).await.unwrap().id();
    let b = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().priority(0).run_at(t0)).await.unwrap().id();
    let c = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().priority(0).run_at(t0)).await.unwrap().id();
    let d = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().priority(3).run_at(early)).await.unwrap().id();
    let first = claim_all(&f.store, "default", 2).await;
    assert_eq!(first.iter().map(|j| j.id).collect::<Vec<_>>(), vec![a, b]);
    // A job that sorts before the cursor becomes runnable (priority -1): the cursor skips it.
    let urgent = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().priority(-1)).await.unwrap().id();
    let mut next = claim("default", 10);
    next.after = Some(ClaimCursor::of(&first[1]));
    let after: Vec<_> = f.store.claim(next.clone()).await.unwrap().into_iter().map(|j| j.id).collect();
    // Ties on priority and run_at are broken by id, as in the claim order.
    assert_eq!(after, vec![c, d], "jobs after (0, t0, b), in claim order");
    assert!(f.store.claim(next).await.unwrap().is_empty(), "nothing left after the cursor");
    // Without a cursor the claim starts from the first runnable job again.
    assert_eq!(claim_all(&f.store, "default", 10).await.iter().map(|j| j.id).collect::<Vec<_>>(), vec![urgent]);
}

/// Bands whose jobs due later sort among and after their due ones (the claim walks each band
/// up to `now` and moves on): claims of every size take the due jobs in claim order, a cursor
/// resumes mid-band, and the later ones come due with the clock.
async fn claims_take_due_jobs_in_order_across_bands_of_jobs_scheduled_later(t: TestDb) {
    let f = fixture(t);
    let t0 = f.clock.now();
    let mut due = Vec::new();
    let mut later = Vec::new();
    for (i, priority) in [-2_i16, 0, 0, 3, 7, 7, 7, 0, -2, 3, 11].into_iter().enumerate() {
        let i = i as i64;
        // Due ones with run_at ties (broken by id) and later ones before and after each band's.
        for at in [-(i % 3), i % 2 + 1, -(i % 3), 40] {
            let run_at = t0 + chrono::Duration::seconds(at);
            let job = NewJob::new("k.x", &json!({})).unwrap().priority(priority).run_at(run_at);
            let id = f.store.enqueue(job).await.unwrap().id();
            let list = if at <= 0 { &mut due } else { &mut later };
            list.push((priority, run_at, id.as_uuid(), id));
        }
    }
    let mut other = NewJob::new("k.x", &json!({})).unwrap().queue("other").priority(-9);
    other = other.run_at(t0 - chrono::Duration::seconds(9));
    f.store.enqueue(other).await.unwrap();
    due.sort_by_key(|j| (j.0, j.1, j.2));
    later.sort_by_key(|j| (j.0, j.1, j.2));
    let order = |jobs: &[(i16, chrono::DateTime<chrono::Utc>, uuid::Uuid, keel_queue::JobId)]| {
        jobs.iter().map(|j| j.3).collect::<Vec<_>>()
    };
    let want = order(&due);
    let mut got = Vec::new();
    for size in [3, 1, 4] {
        got.extend(claim_all(&f.store, "default", size).await.into_iter().map(|j| j.id));
    }
    // From a cursor in the middle of a band, as a claim loop resumes.
    let mut next = claim("default", 5);
    next.after = Some(ClaimCursor { priority: due[7].0, run_at: due[7].1, id: due[7].3 });
    got.extend(f.store.claim(next).await.unwrap().into_iter().map(|j| j.id));
    got.extend(claim_all(&f.store, "default", 100).await.into_iter().map(|j| j.id));
    assert_eq!(got, want, "every due job once, in claim order, and none due later");
    assert!(claim_all(&f.store, "default", 100).await.is_empty());
    f.clock.advance(Duration::from_secs(2));
    let soon: Vec<_> = later.iter().filter(|j| j.1 <= f.clock.now()).cloned().collect();
    assert!(!soon.is_empty() && soon.len() < later.len());
    assert_eq!(claim_all(&f.store, "default", 100).await.into_iter().map(|j| j.id).collect::<Vec<_>>(), order(&soon));
}

/// A claim from a cursor runs two statements: the rest of the cursor's band, then the bands
/// above it. When the second fails, the jobs the first claimed are handed out rather than left
/// to their leases; a claim from the start is one statement, and its failure claims nothing.
async fn a_claim_whose_upper_bands_fail_still_hands_out_the_rest_of_the_cursor_band(t: TestDb) {
    let f = fixture(t);
    let logs = capture_logs();
    let t0 = f.clock.now();
    let mut ids = Vec::new();
    for (priority, ago) in [(0, 3), (0, 2), (0, 1), (5, 9)] {
        let job =
            NewJob::new("k.x", &json!({})).unwrap().priority(priority).run_at(t0 - chrono::Duration::seconds(ago));
        ids.push(f.store.enqueue(job).await.unwrap().id());
    }
    let [first, b, c, high] = ids[..] else { unreachable!() };
    // The database refuses to claim the priority-5 job.
    let refuse: &[&str] = match &f.t.db {
        Db::Postgres(_) => &[
            "CREATE FUNCTION refuse_claim() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN \
               RAISE EXCEPTION 'refused by the test'; END $f$",
            "CREATE TRIGGER refuse_claim BEFORE UPDATE ON keel_jobs FOR EACH ROW \
             WHEN (NEW.priority = 5 AND NEW.state = 'processing') EXECUTE FUNCTION refuse_claim()",
        ],
        Db::Sqlite(_) => &["CREATE TRIGGER refuse_claim BEFORE UPDATE ON keel_jobs FOR EACH ROW \
             WHEN NEW.priority = 5 AND NEW.state = 'processing' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"],
    };
    for sql in refuse {
        exec(&f.t.db, sql).await;
    }
    let mut next = claim("default", 10);
    next.after = Some(ClaimCursor { priority: 0, run_at: t0 - chrono::Duration::seconds(3), id: first });
    let got: Vec<_> = f.store.claim(next).await.unwrap().into_iter().map(|j| j.id).collect();
    assert_eq!(got, [b, c], "the rest of the cursor's band, handed out");
    let warned = logs.events("claim_incomplete");
    assert_eq!(warned.len(), 1, "{}", logs.text());
    assert_eq!(warned[0]["claimed"], 2);
    assert!(warned[0]["error"].as_str().unwrap().contains("refused by the test"), "{}", warned[0]);

    // PostgreSQL reports a statement's error before it has released the row locks the
    // statement took, so a claim at once could skip the job as locked: wait for the lock.
    if matches!(f.t.db, Db::Postgres(_)) {
        exec(&f.t.db, "SELECT id FROM keel_jobs WHERE priority = 5 FOR UPDATE").await;
    }
    let err = f.store.claim(claim("default", 10)).await.unwrap_err();
    assert!(err.to_string().contains("refused by the test"), "{err}");
    for id in [first, high] {
        let job = f.store.get(id).await.unwrap().unwrap();
        assert_eq!((job.state, job.attempt), (JobState::Pending, 0), "a failed claim claimed nothing");
    }
    let drop = if matches!(f.t.db, Db::Postgres(_)) {
        "DROP TRIGGER refuse_claim ON keel_jobs"
    } else {
        "DROP TRIGGER refuse_claim"
    };
    exec(&f.t.db, drop).await;
    let rest: Vec<_> = claim_all(&f.store, "default", 10).await.into_iter().map(|j| j.id).collect();
    assert_eq!(rest, [first, high]);
}

/// Claimers at once, each resuming after its last full claim as a worker's claim loop does,
/// over five priority bands with jobs due later among them: every due job is claimed once,
/// and none due later.
async fn concurrent_claimers_never_share_a_job(t: TestDb) {
    let f = fixture(t);
    let later = f.clock.now() + chrono::Duration::hours(1);
    let jobs: Vec<NewJob> = (0..750)
        .map(|i| {
            let job = NewJob::new("k.x", &json!({ "i": i })).unwrap().priority((i % 5) as i16 - 2);
            if i % 5 == 4 && i % 4 == 0 {
                job.run_at(later)
            } else {
                job
            }
        })
        .collect();
    let due: HashSet<_> = f.store.enqueue_many(jobs).await.unwrap().iter().map(|e| e.id()).collect();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = f.store.clone();
        tasks.push(tokio::spawn(async move {
            let (mut mine, mut after) = (Vec::new(), None);
            loop {
                let mut next = claim("default", 7);
                next.after = after;
                let got = store.claim(next).await.unwrap();
                if got.is_empty() && after.is_none() {
                    return mine;
                }
                after = if got.len() == 7 { got.last().map(ClaimCursor::of) } else { None };
                mine.extend(got.into_iter().map(|j| j.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "no job claimed twice");
    let scheduled = f.store.list(JobFilter { state: Some(JobState::Pending), ..Default::default() }).await.unwrap();
    assert_eq!(scheduled.len(), 38, "the jobs due later stay pending");
    assert!(scheduled.iter().all(|j| j.run_at == later));
    let due: HashSet<_> = due.difference(&scheduled.iter().map(|j| j.id).collect()).copied().collect();
    assert_eq!(distinct, due, "every job due claimed");
}

/// A batch of completions (one statement on both backends) completes the jobs whose lease is
/// current and reports the others stale, in the batch's order, changing nothing of theirs.
async fn a_batch_of_completions_refuses_only_its_stale_leases(t: TestDb) {
    let f = fixture(t);
    for i in 0..3 {
        f.store.enqueue(NewJob::new("k.x", &json!({ "i": i })).unwrap()).await.unwrap();
    }
    let leases: Vec<_> = claim_all(&f.store, "default", 3).await.iter().map(|j| j.lease().unwrap()).collect();
    let stale = keel_queue::Lease { token: leases[1].token - 1, ..leases[1] };
    let done = f
        .store
        .finish(
            [leases[0], stale, leases[2]]
                .into_iter()
                .map(|lease| Finish { lease, outcome: Outcome::Completed })
                .collect(),
        )
        .await
        .unwrap();
    let completed = Finished::Accepted(JobState::Completed);
    assert_eq!(done, vec![completed, Finished::Stale, completed]);
    let states: Vec<JobState> = {
        let mut v = Vec::new();
        for l in &leases {
            v.push(f.store.get(l.job).await.unwrap().unwrap().state);
        }
        v
    };
    assert_eq!(states, vec![JobState::Completed, JobState::Processing, JobState::Completed]);
}

async fn stale_token_cannot_finish_a_rescued_job(t: TestDb) {
    let f = fixture(t);
    let id = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap()).await.unwrap().id();
    let old = claim_all(&f.store, "default", 1).await[0].lease().unwrap();
    // The holder goes quiet; its lease runs out and another worker rescues the job.
    f.clock.advance(Duration::from_secs(31));
    let rescued = f.store.rescue_expired(100).await.unwrap();
    assert_eq!(rescued.len(), 1);
    assert_eq!(rescued[0].id, id);
    assert_eq!(rescued[0].state, JobState::Retrying);
    assert_eq!(rescued[0].worker.as_deref(), Some("test-worker"));
    let job = f.store.get(id).await.unwrap().unwrap();
    assert!(job.last_error.as_deref().unwrap().starts_with("stuck_processing:"), "{:?}", job.last_error);
    // Rescued but not yet reclaimed: the old holder still cannot finish it.
    assert_eq!(
        f.store.finish(vec![Finish { lease: old, outcome: Outcome::Completed }]).await.unwrap(),
        vec![Finished::Stale]
    );
    let new = claim_all(&f.store, "default", 1).await[0].lease().unwrap();
    assert_ne!(new.token, old.token);
    assert_eq!(f.store.get(id).await.unwrap().unwrap().attempt, 2);
    // The old holder wakes up and reports success, then failure: both rejected.
    let r = f
        .store
        .finish(vec![
            Finish { lease: old, outcome: Outcome::Completed },
            Finish { lease: old, outcome: Outcome::Failed { error: "late".into() } },
        ])
        .await
        .unwrap();
    assert_eq!(r, vec![Finished::Stale, Finished::Stale]);
    assert_eq!(f.store.heartbeat(vec![old], Duration::from_secs(30)).await.unwrap(), vec![id]);
    assert_eq!(f.store.release(vec![old]).await.unwrap(), 0);
    assert_eq!(f.store.get(id).await.unwrap().unwrap().state, JobState::Processing);
    // The current holder finishes exactly once.
    assert_eq!(
        f.store.finish(vec![Finish { lease: new, outcome: Outcome::Completed }]).await.unwrap(),
        vec![Finished::Accepted(JobState::Completed)]
    );
    assert_eq!(
        f.store.finish(vec![Finish { lease: new, outcome: Outcome::Completed }]).await.unwrap(),
        vec![Finished::Stale]
    );
}

async fn heartbeat_extends_the_lease(t: TestDb) {
    let f = fixture(t);
    f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap()).await.unwrap();
    let job = claim_all(&f.store, "default", 1).await.remove(0);
    let lease = job.lease().unwrap();
    assert_eq!(job.lease_expires_at, Some(f.clock.now() + chrono::Duration::seconds(30)));
    for _ in 0..5 {
        f.clock.advance(Duration::from_secs(20));
        assert!(f.store.heartbeat(vec![lease], Duration::from_secs(30)).await.unwrap().is_empty());
        assert!(f.store.rescue_expired(10).await.unwrap().is_empty(), "a heartbeating job is never rescued");
    }
    f.clock.advance(Duration::from_secs(31));
    assert_eq!(f.store.rescue_expired(10).await.unwrap().len(), 1);
}

/// What a claim hands the worker is the row as stored, to the stored precision, including on a
/// retry (its last error kept, no finish time).
async fn a_claimed_job_is_the_job_as_stored(t: TestDb) {
    let f = fixture(t);
    // Sub-millisecond digits: a value filled in without the stored precision would differ.
    f.clock.set(f.clock.now() + chrono::Duration::nanoseconds(123_456_789));
    let job = NewJob::new("k.x", &json!({"n": 1}))
        .unwrap()
        .priority(2)
        .max_attempts(5)
        .dedupe_key("claimed:1")
        .org(OrgId::generate());
    let id = f.store.enqueue(job).await.unwrap().id();
    let as_json = |j: &keel_queue::Job| serde_json::to_value(j).unwrap();
    let first = claim_all(&f.store, "default", 1).await.remove(0);
    assert_eq!(as_json(&first), as_json(&f.store.get(id).await.unwrap().unwrap()));
    let at = f.clock.now() + chrono::Duration::milliseconds(1_500);
    let retry = Outcome::Retry { error: "boom".into(), at };
    f.store.finish(vec![Finish { lease: first.lease().unwrap(), outcome: retry }]).await.unwrap();
    f.clock.advance(Duration::from_millis(1_700));
    let second = claim_all(&f.store, "default", 1).await.remove(0);
    assert_eq!(second.attempt, 2);
    assert_eq!(second.last_error.as_deref(), Some("boom"));
    assert_eq!(as_json(&second), as_json(&f.store.get(id).await.unwrap().unwrap()));
}

async fn retries_back_off_then_dead_letter(t: TestDb) {
    let f = fixture(t);
    let id = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().max_attempts(3)).await.unwrap().id();
    for attempt in 1..=3u32 {
        let job = claim_all(&f.store, "default", 1).await.remove(0);
        assert_eq!(job.attempt, attempt);
        let at = f.clock.now() + chrono::Duration::seconds(10);
        let r = f
            .store
            .finish(vec![Finish {
                lease: job.lease().unwrap(),
                outcome: Outcome::Retry { error: format!("boom {attempt}"), at },
            }])
            .await
            .unwrap();
        let stored = f.store.get(id).await.unwrap().unwrap();
        assert_eq!(stored.last_error.as_deref(), Some(format!("boom {attempt}").as_str()));
        if attempt < 3 {
            assert_eq!(r, vec![Finished::Accepted(JobState::Retrying)]);
            assert_eq!(stored.run_at, at);
            assert!(claim_all(&f.store, "default", 1).await.is_empty(), "not before the backoff");
            f.clock.advance(Duration::from_secs(10));
        } else {
            assert_eq!(r, vec![Finished::Accepted(JobState::DeadLetter)]);
            assert!(stored.finished_at.is_some());
        }
    }
    // Requeue gives it fresh attempts.
    let rep = f.store.requeue_dead(Some("k.x".into())).await.unwrap();
    assert_eq!(rep.requeued, 1);
    let job = f.store.get(id).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Pending, 0));
    assert_eq!(claim_all(&f.store, "default", 1).await[0].attempt, 1);
}

async fn permanent_and_unprocessable_failures(t: TestDb) {
    let f = fixture(t);
    let a = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap()).await.unwrap().id();
    let b = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap()).await.unwrap().id();
    let jobs = claim_all(&f.store, "default", 2).await;
    let lease = |id| jobs.iter().find(|j| j.id == id).unwrap().lease().unwrap();
    let r = f
        .store
        .finish(vec![
            Finish { lease: lease(a), outcome: Outcome::Failed { error: "400 bad address".into() } },
            Finish { lease: lease(b), outcome: Outcome::DeadLetter { error: "unknown job kind".into() } },
        ])
        .await
        .unwrap();
    assert_eq!(r, vec![Finished::Accepted(JobState::Failed), Finished::Accepted(JobState::DeadLetter)]);
    assert_eq!(f.store.get(a).await.unwrap().unwrap().attempt, 1, "never retried");
}

async fn rescue_on_last_attempt_dead_letters_as_stuck(t: TestDb) {
    let f = fixture(t);
    let id = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().max_attempts(1)).await.unwrap().id();
    claim_all(&f.store, "default", 1).await;
    f.clock.advance(Duration::from_secs(60));
    let r = f.store.rescue_expired(10).await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].state, JobState::DeadLetter);
    let job = f.store.get(id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::DeadLetter);
    assert!(job.last_error.unwrap().starts_with("stuck_processing:"));
}

async fn release_gives_the_attempt_back(t: TestDb) {
    let f = fixture(t);
    let id = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap()).await.unwrap().id();
    let lease = claim_all(&f.store, "default", 1).await[0].lease().unwrap();
    assert_eq!(f.store.release(vec![lease]).await.unwrap(), 1);
    let job = f.store.get(id).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Pending, 0));
    // Runnable again at once, under a new token.
    let again = claim_all(&f.store, "default", 1).await[0].lease().unwrap();
    assert_ne!(again.token, lease.token);
    assert_eq!(
        f.store.finish(vec![Finish { lease, outcome: Outcome::Completed }]).await.unwrap(),
        vec![Finished::Stale]
    );
}

async fn bad_input_is_refused_with_the_field_named(t: TestDb) {
    let f = fixture(t);
    let big = "x".repeat(keel_queue::DEFAULT_MAX_PAYLOAD_BYTES + 1);
    let err = f.store.enqueue(NewJob::new("k.x", &json!({ "blob": big })).unwrap()).await.unwrap_err();
    assert!(matches!(err, QueueError::PayloadTooLarge { .. }));
    assert!(err.to_string().contains("KEEL_JOB_MAX_PAYLOAD_BYTES"), "{err}");
    let err = f.store.enqueue(NewJob::new("Email Send", &json!({})).unwrap()).await.unwrap_err();
    assert!(err.to_string().contains("job kind"), "{err}");
    let err = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().queue("")).await.unwrap_err();
    assert!(err.to_string().contains("queue name"), "{err}");
    let err = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().max_attempts(0)).await.unwrap_err();
    assert!(err.to_string().contains("max_attempts"), "{err}");
    let err = NewJob::from_json("k.x", "{not json").unwrap_err();
    assert!(err.to_string().contains("payload"), "{err}");
    assert_eq!(f.store.snapshot().await.unwrap().counts.total(), 0, "nothing half-written");
}

async fn wakeup_fires_on_enqueue(t: TestDb) {
    let f = fixture(t);
    let cancel = tokio_util::sync::CancellationToken::new();
    f.store.start_wakeups(cancel.clone()).await.unwrap();
    // A second store on the same database stands in for another process (Postgres) or an
    // API handler in this process (SQLite).
    let other = keel_queue::open(f.t.db.clone());
    let notify = f.store.wakeup().notify();
    let woken = notify.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    let generation = f.store.wakeup().generation();
    other.enqueue(NewJob::new("k.x", &json!({})).unwrap()).await.unwrap();
    within("a wakeup after enqueue", woken).await;
    // A claim loop that was busy, not waiting, tells by the generation (it drops its cursor).
    assert!(f.store.wakeup().generation() > generation);
    cancel.cancel();
    let _ = Arc::strong_count(&other);
}

/// Heartbeats cover every job a worker holds while the completer finishes some of them;
/// overlapping row sets in different orders must queue, not deadlock (seen in the bench
/// before locks were taken in id order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_and_finishes_on_overlapping_jobs_never_deadlock() {
    let Some(t) =
        TestDb::postgres("store_core::heartbeats_and_finishes_on_overlapping_jobs_never_deadlock", crate::SCHEMAS)
            .await
    else {
        return;
    };
    let f = fixture(t);
    f.store.enqueue_many((0..2000).map(|i| NewJob::new("k.x", &json!({ "i": i })).unwrap()).collect()).await.unwrap();
    let leases: Vec<_> = claim_all(&f.store, "default", 2000).await.iter().map(|j| j.lease().unwrap()).collect();
    let mut tasks = Vec::new();
    for round in 0..4u64 {
        let (store, mut mine) = (f.store.clone(), leases.clone());
        // Each heartbeat lists the leases in a different order.
        let n = mine.len();
        mine.rotate_left((round * 397) as usize % n);
        if round % 2 == 1 {
            mine.reverse();
        }
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                store.heartbeat(mine.clone(), Duration::from_secs(30)).await?;
            }
            Ok::<_, QueueError>(())
        }));
    }
    let (store, mut rev) = (f.store.clone(), leases.clone());
    rev.reverse();
    tasks.push(tokio::spawn(async move {
        for chunk in rev.chunks(100) {
            store.finish(chunk.iter().map(|l| Finish { lease: *l, outcome: Outcome::Completed }).collect()).await?;
        }
        Ok(())
    }));
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(f.store.snapshot().await.unwrap().counts.completed, 2000);
}

/// PostgreSQL claims commit without waiting for the WAL flush, so a server crash can lose one:
/// the row is back as it was before the claim, while the worker still holds the claim's token.
/// The next claim must not hand out that token again, or the old holder's retried finish
/// would be accepted for the new holder's run.
async fn a_claim_lost_in_a_server_crash_never_lends_its_token_again(t: TestDb) {
    let f = fixture(t);
    let Db::Postgres(pool) = &f.t.db else {
        // SQLite lives on the worker's machine: whatever loses its last commits (power loss)
        // takes the worker down too, so no old holder survives to retry a finish.
        return;
    };
    let id = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap()).await.unwrap().id();
    let lost = claim_all(&f.store, "default", 1).await[0].lease().unwrap();
    // The crash: recovery leaves the row as before the claim (pending, token 0).
    sqlx::query(
        "UPDATE keel_jobs SET state = 'pending', attempt = 0, lease_seq = 0, lease_expires_at = NULL, \
         locked_by = NULL, started_at = NULL WHERE id = $1",
    )
    .bind(id.as_uuid())
    .execute(pool)
    .await
    .unwrap();
    let again = claim_all(&f.store, "default", 1).await[0].lease().unwrap();
    assert_ne!(again.token, lost.token, "a token handed out before the crash is never handed out again");
    assert_eq!(
        f.store.finish(vec![Finish { lease: lost, outcome: Outcome::Completed }]).await.unwrap(),
        vec![Finished::Stale],
        "the old holder's retried finish is refused"
    );
    assert_eq!(
        f.store.finish(vec![Finish { lease: again, outcome: Outcome::Completed }]).await.unwrap(),
        vec![Finished::Accepted(JobState::Completed)]
    );
}

/// The claim loop keeps its PostgreSQL connection between claims (no ping when it is lent, no
/// release check when it comes back), but only from a pool that can spare one.
#[tokio::test]
async fn claims_keep_their_connection_only_when_the_pool_can_spare_it() {
    let Some(t) =
        TestDb::postgres("store_core::claims_keep_their_connection_only_when_the_pool_can_spare_it", crate::SCHEMAS)
            .await
    else {
        return;
    };
    let Db::Postgres(shared) = t.db.clone() else { panic!("a PostgreSQL test database") };
    let options = (*shared.connect_options()).clone();
    // A worker's wakeup listener holds one of the pool's connections besides: a pool of 4
    // spares none for the claims.
    for (size, kept) in [(5u32, 1u32), (4, 0)] {
        // A short acquire timeout: the pool running dry is what shows a connection is kept.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(size)
            .acquire_timeout(Duration::from_millis(500))
            .connect_with(options.clone())
            .await
            .unwrap();
        let store: Arc<dyn keel_queue::Store> = Arc::new(PgStore::new(pool.clone()));
        store.enqueue_many((0..3).map(|i| NewJob::new("k.x", &json!({ "i": i })).unwrap()).collect()).await.unwrap();
        for _ in 0..3 {
            assert_eq!(store.claim(claim("default", 1)).await.unwrap().len(), 1);
        }
        // Everything but the kept connection can be lent (the others come back from the claims).
        let mut lent = Vec::new();
        for _ in 0..size - kept {
            lent.push(pool.acquire().await.expect("a connection the claims gave back"));
        }
        if kept == 1 {
            assert!(pool.acquire().await.is_err(), "pool of {size}: the claim loop's connection stays with it");
        }
        // Once the claim loops stop the store gives it back: the pool closes with the store
        // still alive (close waits for every connection lent).
        drop(lent);
        store.claims_stopped();
        within("the pool to close", pool.close()).await;
        drop(store);
    }
}

/// Rows are decoded by position with their column types checked once per result: a column
/// whose type drifted from the migrations' (here `priority` widened by hand) is refused with
/// its name, for one job and for a list, never read as something else.
#[tokio::test]
async fn a_column_of_another_type_is_refused_by_name() {
    let Some(t) = TestDb::postgres("store_core::a_column_of_another_type_is_refused_by_name", crate::SCHEMAS).await
    else {
        return;
    };
    let f = fixture(t);
    let id = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap()).await.unwrap().id();
    // Nothing has read a job yet: a statement prepared before the change would be refused
    // by PostgreSQL itself ("cached plan must not change result type").
    let Db::Postgres(pool) = &f.t.db else { unreachable!("a PostgreSQL test database") };
    sqlx::query("ALTER TABLE keel_jobs ALTER COLUMN priority TYPE int8").execute(pool).await.unwrap();
    for e in [f.store.get(id).await.unwrap_err(), f.store.list(JobFilter::default()).await.unwrap_err()] {
        assert!(matches!(e, QueueError::Corrupt(_)), "{e:?}");
        assert!(e.to_string().contains("column priority of keel_jobs is INT8"), "{e}");
    }
}

/// A retry of an enqueue (the same NewJob, or a clone: the same id) after the first one
/// committed, ran and completed. PostgreSQL moves completed jobs to `keel_jobs_completed`,
/// where the insert's conflict check cannot see the id: the job was inserted a second time and
/// ran again, its id in both tables. Refused as on SQLite, alone and in a bulk enqueue; a
/// resent job whose first enqueue never committed is inserted.
async fn a_job_enqueued_again_after_it_completed_is_refused(t: TestDb) {
    let f = fixture(t);
    let job = NewJob::new("k.x", &json!({})).unwrap();
    let id = f.store.enqueue(job.clone()).await.unwrap().id();
    let held = claim_all(&f.store, "default", 5).await;
    let lease = held[0].lease().unwrap();
    f.store.finish(vec![Finish { lease, outcome: Outcome::Completed }]).await.unwrap();
    let again = f.store.enqueue(job.clone()).await.unwrap_err();
    assert!(again.to_string().contains("already exists"), "{again}");
    let bulk = f.store.enqueue_many(vec![NewJob::new("k.x", &json!({})).unwrap(), job]).await.unwrap_err();
    assert!(bulk.to_string().contains("already exists"), "{bulk}");
    let all = f.store.list(JobFilter::default()).await.unwrap();
    assert_eq!(all.iter().map(|j| (j.id, j.state)).collect::<Vec<_>>(), [(id, JobState::Completed)]);
    assert!(claim_all(&f.store, "default", 5).await.is_empty(), "nothing runs again");

    // Sent once in a transaction that rolled back: the resent job is inserted.
    let fresh = NewJob::new("k.y", &json!({})).unwrap();
    match &f.t.db {
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await.unwrap();
            PgStore::new(pool.clone()).enqueue_in(&mut tx, fresh.clone()).await.unwrap();
            tx.rollback().await.unwrap();
        }
        Db::Sqlite(pool) => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
            SqliteStore::new(pool.clone()).enqueue_in(&mut tx, fresh.clone()).await.unwrap();
            tx.rollback().await.unwrap();
        }
    }
    let created = f.store.enqueue(fresh).await.unwrap();
    assert!(matches!(created, Enqueued::Created(_)), "{created:?}");
}

/// SQLite stores ids and times as text and integers that another writer (a restore, a hand
/// edit) can spell otherwise. An id in upper case was read, yet never matched by id (every
/// heartbeat and finish of it missed), and a time out of range was read as 1970. Both are
/// refused as corrupt, naming what is wrong.
#[tokio::test]
async fn sqlite_rows_spelled_otherwise_are_refused_not_misread() {
    let f = fixture(TestDb::sqlite(crate::SCHEMAS).await);
    let Db::Sqlite(pool) = &f.t.db else { unreachable!("a SQLite test database") };
    let id = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap()).await.unwrap().id();
    sqlx::query("UPDATE keel_jobs SET id = upper(id)").execute(pool).await.unwrap();
    let e = f.store.list(JobFilter::default()).await.unwrap_err();
    assert!(matches!(e, QueueError::Corrupt(_)) && e.to_string().contains("lower-case hyphenated"), "{e}");
    sqlx::query("UPDATE keel_jobs SET id = lower(id), run_at = 9000000000000000").execute(pool).await.unwrap();
    for e in [f.store.get(id).await.unwrap_err(), f.store.list(JobFilter::default()).await.unwrap_err()] {
        assert!(matches!(e, QueueError::Corrupt(_)) && e.to_string().contains("run_at is 9000000000000000"), "{e}");
    }
}

/// A claimed row the mapper refuses (here an org id that is not one, which SQLite's schema
/// cannot refuse) failed the whole claim, leaving every job claimed with it to its lease. It
/// now costs only itself, logged with its id; the others run.
#[tokio::test]
async fn an_unreadable_claimed_row_costs_only_itself() {
    let f = fixture(TestDb::sqlite(crate::SCHEMAS).await);
    let Db::Sqlite(pool) = &f.t.db else { unreachable!("a SQLite test database") };
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(f.store.enqueue(NewJob::new("k.x", &json!({ "i": i })).unwrap()).await.unwrap().id());
    }
    sqlx::query("UPDATE keel_jobs SET org_id = 'not-an-org' WHERE id = ?")
        .bind(ids[1].to_string())
        .execute(pool)
        .await
        .unwrap();
    let logs = crate::support::capture_logs();
    let claimed: Vec<_> = claim_all(&f.store, "default", 5).await.into_iter().map(|j| j.id).collect();
    assert_eq!(claimed, [ids[0], ids[2]], "the readable jobs of the claim");
    let logged = logs.events("claimed_row_unreadable");
    assert_eq!(logged.len(), 1, "{}", logs.text());
    assert_eq!(logged[0]["job_id"], ids[1].to_string());
    let state: String = sqlx::query_scalar("SELECT state FROM keel_jobs WHERE id = ?")
        .bind(ids[1].to_string())
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(state, "processing", "held under its lease until rescued");
}
