//! Incident switches and pauses: a switched-off tick opens no connection; every skip is
//! logged, counted, and reported by the next run; outages are survived.

use crate::support::{capture_logs, fixture, within};
use crate::worker::settings;
use keel_queue::cron::{CronTick, FnTask, Schedule, TaskError};
use keel_queue::store::{CronOutcome, RunFilter};
use keel_queue::worker::Tick;
use keel_queue::{open_with, KindOptions, ManualClock, NewJob, Registry, StoreOptions, SwitchBoard, Switches, Worker};
use keel_storage::Db;
use keel_testkit::{backend_tests, TestDb};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

backend_tests!(
    switched_off_tick_opens_no_connection,
    skipped_ticks_are_logged_counted_and_reported_by_the_next_run,
    job_loop_reports_skipped_ticks_on_its_next_batch,
    empty_and_failed_runs_are_visible_with_emails_masked,
);

fn digest(items: u64) -> FnTask {
    FnTask::new("digest", Schedule::every(Duration::from_secs(3600)), move |_| async move { Ok(items) })
}

/// A pool that has opened no connection yet, on the test's database.
fn lazy(t: &TestDb) -> Db {
    match &t.db {
        Db::Postgres(_) => Db::Postgres(sqlx::postgres::PgPoolOptions::new().connect_lazy(&t.url).unwrap()),
        Db::Sqlite(_) => Db::Sqlite(sqlx::sqlite::SqlitePoolOptions::new().connect_lazy(&t.url).unwrap()),
    }
}

fn open_connections(db: &Db) -> u32 {
    match db {
        Db::Postgres(p) => p.size(),
        Db::Sqlite(p) => p.size(),
    }
}

async fn switched_off_tick_opens_no_connection(t: TestDb) {
    let db = lazy(&t);
    let store = open_with(db.clone(), Arc::new(ManualClock::at_epoch_2030()), StoreOptions::default());
    let board = SwitchBoard::new(Switches::with(&["DISABLE_BACKGROUND_JOB_CRON"]));
    let w = Worker::new(store, Registry::new(), settings(1, 5)).with_switches(board.clone()).with_task(digest(1));
    assert_eq!(w.tick("default").await.unwrap(), Tick::Switched { var: "DISABLE_BACKGROUND_JOB_CRON".into() });
    for global in ["DISABLE_CRON_JOBS", "DISABLE_SCHEDULED_WORK"] {
        board.set(Switches::with(&[global]));
        assert_eq!(w.tick("default").await.unwrap(), Tick::Switched { var: global.into() });
        assert_eq!(w.cron_tick("digest").await.unwrap(), CronTick::Switched { var: global.into() });
        assert_eq!(w.cron_tick("job_retention").await.unwrap(), CronTick::Switched { var: global.into() });
    }
    board.set(Switches::with(&["DISABLE_DIGEST_CRON"]));
    assert_eq!(w.cron_tick("digest").await.unwrap(), CronTick::Switched { var: "DISABLE_DIGEST_CRON".into() });
    assert_eq!(open_connections(&db), 0, "no tick so far opened a connection");
    let m = w.metrics().snapshot();
    assert_eq!(
        (m.skipped_ticks["background_job"], m.skipped_ticks["digest"], m.skipped_ticks["job_retention"]),
        (3, 3, 2)
    );
    // The per-task switch leaves other work running, and that work does connect.
    assert_eq!(w.tick("default").await.unwrap(), Tick::Empty);
    assert!(open_connections(&db) >= 1);
}

#[tokio::test]
async fn switched_off_tick_succeeds_while_the_database_is_down() {
    // Nothing listens on port 1: any connection attempt fails.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(300))
        .connect_lazy("postgres://keel@127.0.0.1:1/keel")
        .unwrap();
    let store = open_with(Db::Postgres(pool), Arc::new(ManualClock::at_epoch_2030()), StoreOptions::default());
    let board = SwitchBoard::new(Switches::with(&["DISABLE_SCHEDULED_WORK"]));
    let w = Worker::new(store, Registry::new(), settings(1, 5)).with_switches(board.clone()).with_task(digest(1));
    assert!(matches!(w.tick("default").await, Ok(Tick::Switched { .. })));
    assert!(matches!(w.cron_tick("digest").await, Ok(CronTick::Switched { .. })));
    board.set(Switches::default());
    let err = w.tick("default").await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(w.cron_tick("digest").await.unwrap_err().is_unavailable());
}

async fn skipped_ticks_are_logged_counted_and_reported_by_the_next_run(t: TestDb) {
    let f = fixture(t);
    let logs = capture_logs();
    let board = SwitchBoard::new(Switches::with(&["DISABLE_DIGEST_CRON"]));
    let w =
        Worker::new(f.store.clone(), Registry::new(), settings(1, 5)).with_switches(board.clone()).with_task(digest(4));
    for _ in 0..3 {
        assert!(matches!(w.cron_tick("digest").await.unwrap(), CronTick::Switched { .. }));
    }
    let skips = logs.events("tick_skipped");
    assert_eq!(skips.len(), 3);
    assert_eq!(skips[2]["task"], "digest");
    assert_eq!(skips[2]["skipped_ticks"], 3);
    assert_eq!(skips[2]["reason"], "DISABLE_DIGEST_CRON=true");
    assert_eq!(w.metrics().snapshot().skipped_ticks["digest"], 3);
    // Switch off (SIGHUP reload): the first run records the three skipped ticks.
    board.reload(&keel_config::MapSource::new([("DISABLE_DIGEST_CRON", "false")])).unwrap();
    let CronTick::Ran { run, lease_lost } = w.cron_tick("digest").await.unwrap() else { panic!("runs when due") };
    assert!(!lease_lost);
    assert_eq!((run.outcome, run.items, run.skipped_ticks), (Some(CronOutcome::Ok), 4, 3));
    let logged = logs.events("cron_run");
    assert_eq!((logged[0]["skipped_ticks"].as_u64(), logged[0]["outcome"].as_str()), (Some(3), Some("ok")));
    assert!(matches!(w.cron_tick("digest").await.unwrap(), CronTick::NotDue { .. }));
    // A database pause (`cron pause digest`) is seen on the next due tick.
    f.store.cron_pause("digest".into(), None).await.unwrap();
    f.clock.advance(Duration::from_secs(3600));
    assert_eq!(w.cron_tick("digest").await.unwrap(), CronTick::Paused { by: "digest".into() });
    f.store.cron_resume("digest".into()).await.unwrap();
    f.clock.advance(Duration::from_secs(3600));
    let CronTick::Ran { run, .. } = w.cron_tick("digest").await.unwrap() else { panic!() };
    assert_eq!(run.skipped_ticks, 1);
    let log: Vec<_> = f
        .store
        .cron_runs(RunFilter { task: Some("digest".into()), limit: None })
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.outcome.unwrap(), r.skipped_ticks))
        .collect();
    assert_eq!(log, vec![(CronOutcome::Ok, 1), (CronOutcome::SkippedPaused, 0), (CronOutcome::Ok, 3)]);
    assert_eq!(w.metrics().snapshot().skipped_ticks["digest"], 4);
}

async fn job_loop_reports_skipped_ticks_on_its_next_batch(t: TestDb) {
    let f = fixture(t);
    let logs = capture_logs();
    let mut reg = Registry::new();
    reg.register_json("k.x", KindOptions::default(), |_, _| async { Ok(()) }).unwrap();
    let board = SwitchBoard::new(Switches::with(&["DISABLE_CRON_JOBS"]));
    let w = Worker::new(f.store.clone(), reg, settings(1, 5)).with_switches(board.clone());
    f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap()).await.unwrap();
    w.tick("default").await.unwrap();
    w.tick("default").await.unwrap();
    board.set(Switches::default());
    f.store.pause_queue("default".into(), None).await.unwrap();
    assert!(matches!(w.tick("default").await.unwrap(), Tick::Paused { .. }));
    f.store.resume_queue("default".into()).await.unwrap();
    let Tick::Ran { report } = w.tick("default").await.unwrap() else { panic!() };
    assert_eq!((report.completed, report.skipped_ticks), (1, 3));
    let batch = logs.events("claimed_batch");
    assert_eq!((batch[0]["count"].as_u64(), batch[0]["skipped_ticks"].as_u64()), (Some(1), Some(3)));
    assert_eq!(logs.events("tick_skipped").len(), 3);
}

async fn empty_and_failed_runs_are_visible_with_emails_masked(t: TestDb) {
    let f = fixture(t);
    let logs = capture_logs();
    let w = Worker::new(f.store.clone(), Registry::new(), settings(1, 5))
        .with_task(FnTask::new("noop", Schedule::every(Duration::from_secs(60)), |_| async { Ok(0) }))
        .with_task(FnTask::new("mailer", Schedule::every(Duration::from_secs(60)), |_| async {
            Err(TaskError("smtp refused jane.doe@example.com".into()))
        }));
    let CronTick::Ran { run, .. } = w.cron_tick("noop").await.unwrap() else { panic!() };
    assert_eq!(run.outcome, Some(CronOutcome::Empty));
    let CronTick::Ran { run, .. } = w.cron_tick("mailer").await.unwrap() else { panic!() };
    assert_eq!(run.outcome, Some(CronOutcome::Failed));
    let stored = f.store.cron_runs(RunFilter { task: Some("mailer".into()), limit: None }).await.unwrap();
    assert_eq!(stored[0].outcome, Some(CronOutcome::Failed));
    assert!(logs.text().contains("j***@example.com"));
    assert!(!logs.text().contains("jane.doe@example.com"), "no plaintext address in any log line");
    // A job failure carrying an address is masked the same way.
    let mut reg = Registry::new();
    reg.register_json("mail.x", KindOptions::default(), |_, _| async {
        Err(keel_queue::JobError::retryable("bounce from jane.doe@example.com"))
    })
    .unwrap();
    let w = Worker::new(f.store.clone(), reg, settings(1, 5));
    f.store.enqueue(NewJob::new("mail.x", &json!({})).unwrap()).await.unwrap();
    w.tick("default").await.unwrap();
    let retrying = logs.events("retrying");
    assert_eq!(retrying[0]["error"], "bounce from j***@example.com");
    assert!(retrying[0]["next_run_at"].is_string());
    assert!(!logs.text().contains("jane.doe@example.com"));
}

/// Postgres only: every connection of the worker is killed mid-run; it backs off,
/// reconnects, and every job still ends completed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_survives_its_connections_being_killed() {
    let Some(t) = TestDb::postgres("incidents::worker_survives_its_connections_being_killed", crate::SCHEMAS).await
    else {
        return;
    };
    let clock = keel_queue::SystemClock;
    let store = open_with(t.db.clone(), Arc::new(clock), StoreOptions::default());
    let done = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let halfway = Arc::new(tokio::sync::Notify::new());
    let all = Arc::new(tokio::sync::Notify::new());
    let mut reg = Registry::new();
    let (d, h, a) = (done.clone(), halfway.clone(), all.clone());
    reg.register_json("k.x", KindOptions::default(), move |v, _| {
        let (d, h, a) = (d.clone(), h.clone(), a.clone());
        async move {
            let mut g = d.lock().unwrap();
            g.push(v["i"].as_u64().unwrap());
            if g.len() == 100 {
                h.notify_one();
            }
            if g.len() >= 300 {
                a.notify_one();
            }
            Ok(())
        }
    })
    .unwrap();
    store.enqueue_many((0..300).map(|i| NewJob::new("k.x", &json!({ "i": i })).unwrap()).collect()).await.unwrap();
    let w = Arc::new(Worker::new(store.clone(), reg, settings(4, 10)));
    let cancel = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn({
        let (w, c) = (w.clone(), cancel.clone());
        async move { w.run(c).await }
    });
    within("the first 100 jobs", halfway.notified()).await;
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&t.url).await.unwrap();
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()) k",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(killed >= 1, "the worker's connections were cut");
    within("the rest after reconnecting", all.notified()).await;
    // Handlers ran; their finishes may still be in the completer's retry loop. Counted on the
    // test's own connection: a pooled one cut by the kill and used again within a second fails
    // its next statement once (keel-storage pings only longer-idle ones), which is the
    // worker's to survive, not this check's.
    let count = "SELECT count(*) FILTER (WHERE state = 'completed'), count(*) \
                 FROM (SELECT state FROM keel_jobs UNION ALL SELECT state FROM keel_jobs_completed) j";
    let (completed, total) = within("every finish to be recorded", async {
        loop {
            let (completed, total): (i64, i64) = sqlx::query_as(count).fetch_one(&mut admin).await.unwrap();
            if completed == 300 {
                break (completed, total);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    cancel.cancel();
    let report = within("the worker to stop", run).await.unwrap().unwrap();
    assert_eq!((completed, total), (300, 300), "nothing lost, nothing duplicated, every job completed");
    assert!(report.metrics.completed + report.metrics.stale_finishes >= 300);
}

#[tokio::test]
async fn kind_queue_disabled_runs_the_job_inline() {
    let t = TestDb::sqlite(crate::SCHEMAS).await;
    let store = keel_queue::open(t.db.clone());
    let ran = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut reg = Registry::new();
    let r = ran.clone();
    reg.register_json("email.send", KindOptions::default(), move |v, _| {
        let r = r.clone();
        async move {
            if v["fail"] == true {
                return Err(keel_queue::JobError::permanent("mailbox full"));
            }
            r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
    })
    .unwrap();
    let board = SwitchBoard::new(Switches::with(&["EMAIL_SEND_QUEUE_DISABLED"]));
    let d = keel_queue::Dispatcher::new(store.clone(), reg, board.clone());
    let out = d.dispatch(NewJob::new("email.send", &json!({})).unwrap()).await.unwrap();
    assert_eq!(out, keel_queue::Dispatched::RanInline);
    assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(store.snapshot().await.unwrap().counts.total(), 0, "nothing was queued");
    let err = d.dispatch(NewJob::new("email.send", &json!({"fail": true})).unwrap()).await.unwrap_err();
    assert!(
        err.to_string().contains("EMAIL_SEND_QUEUE_DISABLED=true") && err.to_string().contains("mailbox full"),
        "{err}"
    );
    // Other kinds, and this kind once the switch is off, are queued.
    assert!(matches!(
        d.dispatch(NewJob::new("webhook.deliver", &json!({})).unwrap()).await.unwrap(),
        keel_queue::Dispatched::Queued(_)
    ));
    board.set(Switches::default());
    assert!(matches!(
        d.dispatch(NewJob::new("email.send", &json!({})).unwrap()).await.unwrap(),
        keel_queue::Dispatched::Queued(_)
    ));
    assert_eq!(store.snapshot().await.unwrap().counts.pending, 2);
}

#[tokio::test]
async fn registered_kind_options_apply_to_jobs_enqueued_by_name() {
    let t = TestDb::sqlite(crate::SCHEMAS).await;
    let store = keel_queue::open(t.db.clone());
    let mut reg = Registry::new();
    reg.register_json(
        "webhook.deliver",
        KindOptions::default().queue("webhooks").max_attempts(10).priority(2),
        |_, _| async { Ok(()) },
    )
    .unwrap();
    let prepared = reg.prepare(NewJob::new("webhook.deliver", &json!({})).unwrap().priority(-1));
    let d = keel_queue::Dispatcher::new(store.clone(), reg, SwitchBoard::default());
    let keel_queue::Dispatched::Queued(e) = d.dispatch(prepared).await.unwrap() else { panic!() };
    let job = store.get(e.id()).await.unwrap().unwrap();
    assert_eq!((job.queue.as_str(), job.max_attempts, job.priority), ("webhooks", 10, -1), "explicit priority kept");
    let keel_queue::Dispatched::Queued(e) = d.dispatch(NewJob::new("other.kind", &json!({})).unwrap()).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(store.get(e.id()).await.unwrap().unwrap().queue, "default", "unknown kinds keep the defaults");
}
