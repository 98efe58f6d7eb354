//! Conformance: scheduled-task runs (one active run, CAS heartbeat, stale-run recovery,
//! execution log, database pauses).

use crate::support::fixture;
use keel_queue::store::{CronBegin, CronOutcome, CronRunState, CronStart, RunFilter};
use keel_queue::{Clock, QueueError};
use keel_storage::Db;
use keel_testkit::{backend_tests, TestDb};
use std::time::Duration;

backend_tests!(
    one_slot_one_run_even_when_many_workers_race,
    overlapping_run_is_refused_and_the_slot_kept,
    heartbeat_is_compare_and_set,
    dead_workers_run_is_marked_stuck_and_replaced,
    database_pause_records_skipped_paused,
    execution_log_lists_newest_first_and_prunes,
    a_negative_tally_is_refused_by_name,
);

fn begin(f: &crate::support::Fixture, task: &str, worker: &str, every: Duration) -> CronBegin {
    let now = f.clock.now();
    CronBegin {
        task: task.into(),
        worker: worker.into(),
        lease: Duration::from_secs(60),
        first_due: now,
        next_due: now + chrono::Duration::from_std(every).unwrap(),
        skipped_ticks: 0,
    }
}

async fn one_slot_one_run_even_when_many_workers_race(t: TestDb) {
    let f = fixture(t);
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (store, b) = (f.store.clone(), begin(&f, "digest", &format!("w{i}"), Duration::from_secs(300)));
        tasks.push(tokio::spawn(async move { store.cron_begin(b).await.unwrap() }));
    }
    let mut started = 0;
    for t in tasks {
        match t.await.unwrap().start {
            CronStart::Started(_) => started += 1,
            CronStart::NotDue { next_run_at } => {
                assert_eq!(next_run_at, f.clock.now() + chrono::Duration::seconds(300))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(started, 1);
}

async fn overlapping_run_is_refused_and_the_slot_kept(t: TestDb) {
    let f = fixture(t);
    let CronStart::Started(run) =
        f.store.cron_begin(begin(&f, "sync", "a", Duration::from_secs(5))).await.unwrap().start
    else {
        panic!("first run starts")
    };
    // The next slot comes while the first run is still going (its lease is current).
    f.clock.advance(Duration::from_secs(6));
    match f.store.cron_begin(begin(&f, "sync", "b", Duration::from_secs(5))).await.unwrap().start {
        CronStart::AlreadyRunning { run: id, worker } => assert_eq!((id, worker.as_str()), (run.id, "a")),
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
    assert!(f.store.cron_finish(run, CronOutcome::Ok, 3, None).await.unwrap());
    // The slot was not consumed by the refused attempt: it starts now.
    assert!(matches!(
        f.store.cron_begin(begin(&f, "sync", "b", Duration::from_secs(5))).await.unwrap().start,
        CronStart::Started(_)
    ));
}

async fn heartbeat_is_compare_and_set(t: TestDb) {
    let f = fixture(t);
    let CronStart::Started(run) =
        f.store.cron_begin(begin(&f, "sync", "a", Duration::from_secs(60))).await.unwrap().start
    else {
        panic!()
    };
    f.clock.advance(Duration::from_secs(20));
    let next = f.store.cron_heartbeat(run.clone(), Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!(next.heartbeat_at, f.clock.now());
    assert_eq!(next.lease_expires_at, f.clock.now() + chrono::Duration::seconds(60));
    // A holder presenting the old value (a stale copy of the run) is refused.
    assert!(f.store.cron_heartbeat(run.clone(), Duration::from_secs(60)).await.unwrap().is_none());
    assert!(!f.store.cron_finish(run, CronOutcome::Ok, 1, None).await.unwrap());
    // A heartbeat in the same millisecond still moves the value forward.
    let again = f.store.cron_heartbeat(next.clone(), Duration::from_secs(60)).await.unwrap().unwrap();
    assert!(again.heartbeat_at > next.heartbeat_at);
    assert!(f.store.cron_finish(again, CronOutcome::Empty, 0, None).await.unwrap());
}

async fn dead_workers_run_is_marked_stuck_and_replaced(t: TestDb) {
    let f = fixture(t);
    let CronStart::Started(old) =
        f.store.cron_begin(begin(&f, "sync", "dead", Duration::from_secs(10))).await.unwrap().start
    else {
        panic!()
    };
    // The worker dies: no heartbeat, its 60 s lease runs out.
    f.clock.advance(Duration::from_secs(61));
    let begun = f.store.cron_begin(begin(&f, "sync", "alive", Duration::from_secs(10))).await.unwrap();
    assert_eq!(begun.stuck.len(), 1);
    assert_eq!(begun.stuck[0].id, old.id);
    assert_eq!(begun.stuck[0].outcome, Some(CronOutcome::Stuck));
    assert!(begun.stuck[0].error.as_deref().unwrap().contains("worker dead stopped heartbeating"));
    assert!(matches!(begun.start, CronStart::Started(ref r) if r.worker == "alive"));
    // The dead worker comes back: it can neither heartbeat nor record an outcome.
    assert!(f.store.cron_heartbeat(old.clone(), Duration::from_secs(60)).await.unwrap().is_none());
    assert!(!f.store.cron_finish(old, CronOutcome::Ok, 9, None).await.unwrap());
    // The general sweep finds runs of tasks nobody ticks any more.
    f.clock.advance(Duration::from_secs(61));
    let swept = f.store.cron_recover_stale().await.unwrap();
    assert_eq!(swept.len(), 1);
    assert_eq!(swept[0].worker, "alive");
}

async fn database_pause_records_skipped_paused(t: TestDb) {
    let f = fixture(t);
    f.store.cron_pause("all".into(), Some("ops".into())).await.unwrap();
    let pauses = f.store.cron_pauses().await.unwrap();
    assert_eq!(pauses.len(), 1);
    assert_eq!((pauses[0].task.as_str(), pauses[0].paused_by.as_deref()), ("all", Some("ops")));
    assert_eq!(
        f.store.cron_begin(begin(&f, "digest", "a", Duration::from_secs(60))).await.unwrap().start,
        CronStart::Paused { by: "all".into() }
    );
    // The slot was taken, so the pause is recorded once per slot, not once per tick.
    assert!(matches!(
        f.store.cron_begin(begin(&f, "digest", "a", Duration::from_secs(60))).await.unwrap().start,
        CronStart::NotDue { .. }
    ));
    let runs = f.store.cron_runs(RunFilter { task: Some("digest".into()), limit: None }).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].state, runs[0].outcome), (CronRunState::Finished, Some(CronOutcome::SkippedPaused)));
    assert!(f.store.cron_resume("all".into()).await.unwrap());
    f.store.cron_pause("digest".into(), None).await.unwrap();
    f.clock.advance(Duration::from_secs(60));
    assert!(matches!(
        f.store.cron_begin(begin(&f, "digest", "a", Duration::from_secs(60))).await.unwrap().start,
        CronStart::Paused { ref by } if by == "digest"
    ));
    assert!(f.store.cron_resume("digest".into()).await.unwrap());
    assert!(!f.store.cron_resume("digest".into()).await.unwrap());
    f.clock.advance(Duration::from_secs(60));
    assert!(matches!(
        f.store.cron_begin(begin(&f, "digest", "a", Duration::from_secs(60))).await.unwrap().start,
        CronStart::Started(_)
    ));
    assert!(f.store.cron_pause("Not A Task".into(), None).await.is_err());
}

async fn execution_log_lists_newest_first_and_prunes(t: TestDb) {
    let f = fixture(t);
    let outcomes = [CronOutcome::Ok, CronOutcome::Empty, CronOutcome::Failed];
    for (i, o) in outcomes.iter().enumerate() {
        let mut b = begin(&f, "sync", "w", Duration::from_secs(1));
        b.skipped_ticks = i as u64;
        let CronStart::Started(run) = f.store.cron_begin(b).await.unwrap().start else { panic!() };
        let err = (*o == CronOutcome::Failed).then(|| "provider said 500".to_string());
        assert!(f.store.cron_finish(run, *o, 7 * i as u64, err).await.unwrap());
        f.clock.advance(Duration::from_secs(2));
    }
    let runs = f.store.cron_runs(RunFilter::default()).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.outcome.unwrap()).collect::<Vec<_>>(),
        vec![CronOutcome::Failed, CronOutcome::Empty, CronOutcome::Ok]
    );
    assert_eq!(runs[0].items, 14);
    assert_eq!(runs[0].skipped_ticks, 2);
    assert_eq!(runs[0].error.as_deref(), Some("provider said 500"));
    assert!(runs[0].finished_at.is_some());
    assert!(f.store.cron_runs(RunFilter { task: Some("other".into()), limit: None }).await.unwrap().is_empty());
    f.clock.advance(Duration::from_secs(3));
    // Runs started more than 6 s ago: the first two.
    assert_eq!(f.store.cron_prune(Duration::from_secs(6)).await.unwrap(), 2);
    assert_eq!(f.store.cron_runs(RunFilter::default()).await.unwrap().len(), 1);
}

/// A run's counts are read as stored: one edited to a negative value by hand is refused with
/// the column's name, never read as zero.
async fn a_negative_tally_is_refused_by_name(t: TestDb) {
    let f = fixture(t);
    let CronStart::Started(run) =
        f.store.cron_begin(begin(&f, "digest", "a", Duration::from_secs(60))).await.unwrap().start
    else {
        panic!("the run starts")
    };
    assert!(f.store.cron_finish(run, CronOutcome::Ok, 3, None).await.unwrap());
    assert_eq!(f.store.cron_runs(RunFilter::default()).await.unwrap()[0].items, 3);
    let edit = "UPDATE keel_cron_runs SET items = -1";
    match &f.t.db {
        Db::Postgres(pool) => sqlx::query(edit).execute(pool).await.map(drop),
        Db::Sqlite(pool) => sqlx::query(edit).execute(pool).await.map(drop),
    }
    .unwrap();
    let e = f.store.cron_runs(RunFilter::default()).await.unwrap_err();
    assert!(matches!(e, QueueError::Corrupt(_)), "{e:?}");
    assert!(e.to_string().contains("items is -1"), "{e}");
}

/// On PostgreSQL a begin refused by an active run looks that run up in a later statement,
/// which sees commits made in between (read committed). When the run finished there, the
/// begin gives the slot back and tries again, and starts: it never names a run that is not
/// there (a nil id and no worker). The finish is committed from another session by a
/// statement trigger that fires after the refused insert, exactly in that gap.
#[tokio::test]
async fn a_begin_whose_refusing_run_just_finished_starts_on_postgres() {
    let Some(t) =
        TestDb::postgres("cron_store::a_begin_whose_refusing_run_just_finished_starts_on_postgres", crate::SCHEMAS)
            .await
    else {
        return;
    };
    let f = fixture(t);
    let CronStart::Started(first) =
        f.store.cron_begin(begin(&f, "sync", "a", Duration::from_secs(5))).await.unwrap().start
    else {
        panic!("the first run starts")
    };
    let Db::Postgres(pool) = &f.t.db else { unreachable!("a PostgreSQL test database") };
    let finish_elsewhere = format!(
        "CREATE FUNCTION finish_running_elsewhere() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN \
           PERFORM dblink_exec('{}', 'UPDATE keel_cron_runs SET state = ''finished'', outcome = ''ok'', \
             finished_at = heartbeat_at WHERE state = ''running'''); \
           RETURN NULL; END $f$",
        f.t.url
    );
    for sql in [
        "CREATE EXTENSION IF NOT EXISTS dblink",
        &finish_elsewhere,
        "CREATE TRIGGER finish_running_elsewhere AFTER INSERT ON keel_cron_runs \
         FOR EACH STATEMENT EXECUTE FUNCTION finish_running_elsewhere()",
    ] {
        sqlx::query(sql).execute(pool).await.unwrap();
    }
    f.clock.advance(Duration::from_secs(6));
    match f.store.cron_begin(begin(&f, "sync", "b", Duration::from_secs(5))).await.unwrap().start {
        CronStart::Started(run) => assert_eq!(run.worker, "b"),
        other => panic!("expected the second try to start, got {other:?}"),
    }
    let runs = f.store.cron_runs(RunFilter::default()).await.unwrap();
    let states: Vec<_> = runs.iter().map(|r| (r.worker.as_str(), r.state)).collect();
    assert_eq!(states, [("b", CronRunState::Running), ("a", CronRunState::Finished)]);
    assert_eq!(runs[1].id, first.id);
}
