//! The worker against faults: a host observer that panics, an error text the database cannot
//! store, a switch turned on mid-backlog, a stop with claimed jobs never started, a bulk
//! enqueue holding one job twice, and a one-shot tick whose database goes away before its
//! finishes are written.

use crate::support::fixture;
use crate::worker::settings;
use keel_queue::worker::Tick;
use keel_queue::{
    JobError, JobFilter, JobFinished, JobId, JobObserver, JobState, KindOptions, NewJob, QueueError, QueueSettings,
    Registry, Store, SwitchBoard, Switches, Worker,
};
use keel_testkit::{backend_tests, TestDb};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

backend_tests!(
    an_observer_panicking_on_a_finish_stops_no_later_finish,
    an_error_text_with_a_nul_loses_no_other_finish,
    a_switch_turned_on_while_the_loop_waits_to_refill_stops_the_next_claim,
    jobs_claimed_but_never_started_are_released_at_the_stop_not_after_the_grace,
    a_bulk_enqueue_holding_one_job_twice_is_refused_whole,
    settings_a_worker_cannot_run_with_are_refused_naming_the_field,
    a_tick_whose_database_goes_away_reports_its_finishes_lost_after_the_lease,
);

async fn state_of(store: &Arc<dyn Store>, id: JobId) -> JobState {
    store.get(id).await.unwrap().unwrap().state
}

/// Waits (up to 20 s, checking every 10 ms) until `ids` are all in `want`.
async fn until_all(store: &Arc<dyn Store>, ids: &[JobId], want: JobState, what: &str) {
    let reached = async {
        loop {
            let mut all = true;
            for id in ids {
                all &= state_of(store, *id).await == want;
            }
            if all {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    crate::support::within(what, reached).await;
}

fn spawn_run(
    w: &Arc<Worker>,
    cancel: &CancellationToken,
) -> tokio::task::JoinHandle<Result<keel_queue::worker::WorkerReport, QueueError>> {
    let (w, c) = (w.clone(), cancel.clone());
    tokio::spawn(async move { w.run(c).await })
}

/// The observer runs inside the completer: a panic there ended the completer, and every later
/// job ran without its outcome ever being recorded (leases expired, jobs ran again).
async fn an_observer_panicking_on_a_finish_stops_no_later_finish(t: TestDb) {
    struct PanicsOnce(AtomicBool);
    impl JobObserver for PanicsOnce {
        fn finished(&self, _: &JobFinished<'_>) {
            if !self.0.swap(true, Ordering::SeqCst) {
                panic!("the host's observer broke");
            }
        }
    }
    let f = fixture(t);
    let mut reg = Registry::new();
    reg.register_json("k.x", KindOptions::default(), |_, _| async { Ok(()) }).unwrap();
    let observer = Arc::new(PanicsOnce(false.into()));
    let w = Arc::new(Worker::new(f.store.clone(), reg, settings(1, 5)).with_observer(observer));
    let cancel = CancellationToken::new();
    let run = spawn_run(&w, &cancel);
    let a = f.store.enqueue(NewJob::new("k.x", &json!({"i": 1})).unwrap()).await.unwrap().id();
    until_all(&f.store, &[a], JobState::Completed, "the first job (its observer panics)").await;
    let b = f.store.enqueue(NewJob::new("k.x", &json!({"i": 2})).unwrap()).await.unwrap().id();
    until_all(&f.store, &[b], JobState::Completed, "a job after the observer's panic to be recorded").await;
    cancel.cancel();
    crate::support::within("the worker to stop", run).await.unwrap().unwrap();
}

/// PostgreSQL refuses a NUL in `text`, and one refused value failed the whole flush: every
/// other finish written with it was lost too.
async fn an_error_text_with_a_nul_loses_no_other_finish(t: TestDb) {
    let f = fixture(t);
    let mut reg = Registry::new();
    reg.register_json("mixed", KindOptions::default(), |v, _| async move {
        if v["bad"] == true {
            return Err(JobError::retryable("provider said: \0binary"));
        }
        Ok(())
    })
    .unwrap();
    for bad in [false, false, true] {
        f.store.enqueue(NewJob::new("mixed", &json!({ "bad": bad })).unwrap()).await.unwrap();
    }
    let w = Worker::new(f.store.clone(), reg, settings(3, 5));
    let Tick::Ran { report } = w.tick("default").await.unwrap() else { panic!("expected a run") };
    assert_eq!((report.completed, report.retried, report.lost), (2, 1, 0), "{report:?}");
    let retrying = f.store.list(JobFilter { state: Some(JobState::Retrying), ..JobFilter::default() }).await.unwrap();
    let error = retrying[0].last_error.as_deref().unwrap_or_default();
    assert!(error.starts_with("provider said: ") && error.ends_with("binary"), "{error:?}");
}

/// In a backlog the claim loop spends its time waiting for the local queue to run low; a
/// switch turned on during that wait let one more batch be claimed when it ended.
async fn a_switch_turned_on_while_the_loop_waits_to_refill_stops_the_next_claim(t: TestDb) {
    let f = fixture(t);
    let gate = Arc::new(Semaphore::new(0));
    let mut reg = Registry::new();
    let g = gate.clone();
    reg.register_json("gate", KindOptions::default(), move |_, _| {
        let g = g.clone();
        async move {
            g.acquire().await.unwrap().forget();
            Ok(())
        }
    })
    .unwrap();
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(f.store.enqueue(NewJob::new("gate", &json!({ "i": i })).unwrap()).await.unwrap().id());
    }
    let board = SwitchBoard::default();
    // Concurrency 1, batch 4: one claim of 4, one running and three queued, above the
    // low-water mark of 2, so the loop waits to refill.
    let w = Arc::new(Worker::new(f.store.clone(), reg, settings(1, 4)).with_switches(board.clone()));
    let cancel = CancellationToken::new();
    let run = spawn_run(&w, &cancel);
    crate::support::within("the first claim", async {
        while w.metrics().snapshot().claimed < 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let claimed: Vec<JobId> = f
        .store
        .list(JobFilter { state: Some(JobState::Processing), ..JobFilter::default() })
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(claimed.len(), 4);
    board.set(Switches::with(&["DISABLE_BACKGROUND_JOB_CRON"]));
    // The four claimed jobs run and are recorded; the loop decides about its next claim as the
    // queue runs low, before the last of them is recorded.
    gate.add_permits(20);
    until_all(&f.store, &claimed, JobState::Completed, "the four claimed jobs").await;
    cancel.cancel();
    crate::support::within("the worker to stop", run).await.unwrap().unwrap();
    assert_eq!(w.metrics().snapshot().claimed, 4, "no claim after the switch turned on");
    let pending = f.store.list(JobFilter { state: Some(JobState::Pending), ..JobFilter::default() }).await.unwrap();
    assert_eq!(pending.len(), 16);
}

/// At a stop, the jobs claimed but never started leave the heartbeat at once; they were
/// released only after the running jobs ended (up to the grace period, as long as a lease), so
/// they could be rescued meanwhile with an attempt spent. They are released as the claim loops
/// stop, while a job still runs.
async fn jobs_claimed_but_never_started_are_released_at_the_stop_not_after_the_grace(t: TestDb) {
    let f = fixture(t);
    let (started, go) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let mut reg = Registry::new();
    let (s, g) = (started.clone(), go.clone());
    reg.register_json("hold", KindOptions::default(), move |_, _| {
        let (s, g) = (s.clone(), g.clone());
        async move {
            s.notify_one();
            g.notified().await;
            Ok(())
        }
    })
    .unwrap();
    reg.register_json("quick", KindOptions::default(), |_, _| async { Ok(()) }).unwrap();
    let hold = f.store.enqueue(NewJob::new("hold", &json!({})).unwrap()).await.unwrap().id();
    let mut queued = Vec::new();
    for i in 0..3 {
        queued.push(f.store.enqueue(NewJob::new("quick", &json!({ "i": i })).unwrap()).await.unwrap().id());
    }
    let w = Arc::new(Worker::new(f.store.clone(), reg, settings(1, 5)));
    let cancel = CancellationToken::new();
    let run = spawn_run(&w, &cancel);
    crate::support::within("the first job to start", started.notified()).await;
    until_all(&f.store, &queued, JobState::Processing, "the rest to be claimed with it").await;
    cancel.cancel();
    until_all(&f.store, &queued, JobState::Pending, "the unstarted jobs to be released while one still runs").await;
    assert_eq!(state_of(&f.store, hold).await, JobState::Processing, "the running job is still running");
    for id in &queued {
        assert_eq!(f.store.get(*id).await.unwrap().unwrap().attempt, 0, "the attempt is given back");
    }
    go.notify_one();
    let report = crate::support::within("the worker to stop", run).await.unwrap().unwrap();
    assert_eq!(report.released_at_shutdown, 3);
    assert_eq!(state_of(&f.store, hold).await, JobState::Completed);
}

/// A clone keeps its original's id: the insert kept one of the two rows and reported both
/// created (PostgreSQL), or failed on the key (SQLite). It is refused before anything is
/// written, naming the two positions.
async fn a_bulk_enqueue_holding_one_job_twice_is_refused_whole(t: TestDb) {
    let f = fixture(t);
    let other = NewJob::new("k.x", &json!({"n": 0})).unwrap();
    let base = NewJob::new("k.x", &json!({"n": 1})).unwrap();
    let err = f.store.enqueue_many(vec![other, base.clone(), base.clone().priority(3)]).await.unwrap_err();
    assert!(matches!(err, QueueError::Invalid { field: "jobs", .. }), "{err}");
    assert!(err.to_string().contains("jobs[2] has the id of jobs[1]"), "{err}");
    assert!(f.store.list(JobFilter::default()).await.unwrap().is_empty(), "nothing was enqueued");
    f.store.enqueue_many(vec![base]).await.unwrap();
}

/// The settings' fields are public: a struct literal skips `QueueSettings::new`'s floors. A
/// batch of 0 panicked (an underflow), a concurrency of 0 ran nothing it claimed, a lease of 0
/// heartbeated in a busy loop. `run` and `tick` refuse them, naming the field.
async fn settings_a_worker_cannot_run_with_are_refused_naming_the_field(t: TestDb) {
    let f = fixture(t);
    f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap()).await.unwrap();
    let queue = |concurrency, batch_size| QueueSettings {
        queue: "default".into(),
        task: "background_job".into(),
        concurrency,
        batch_size,
    };
    let cases = [
        (queue(0, 5), Duration::from_secs(30), "concurrency"),
        (queue(1, 0), Duration::from_secs(30), "batch size"),
        (queue(1, 5), Duration::ZERO, "lease"),
    ];
    for (q, lease, field) in cases {
        let mut s = settings(1, 5);
        s.queues = vec![q];
        s.lease = lease;
        let w = Worker::new(f.store.clone(), Registry::new(), s);
        let err = crate::support::within("run to refuse", w.run(CancellationToken::new())).await.unwrap_err();
        assert!(matches!(&err, QueueError::Invalid { field: f, .. } if *f == field), "{field}: {err}");
        let err = w.tick("default").await.unwrap_err();
        assert!(matches!(&err, QueueError::Invalid { field: f, .. } if *f == field), "{field}: {err}");
    }
    assert_eq!(f.store.list(JobFilter::default()).await.unwrap()[0].state, JobState::Pending, "nothing claimed");
}

/// `tick` finishes synchronously, retrying while the database is unavailable: it retried for
/// ever, so a one-shot tool or drill hung through an outage. It gives up after the lease (the
/// jobs are rescued by then) and reports the finishes lost.
async fn a_tick_whose_database_goes_away_reports_its_finishes_lost_after_the_lease(t: TestDb) {
    use sqlx::Connection;
    let f = fixture(t);
    f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap()).await.unwrap();
    let mut reg = Registry::new();
    let (db, url) = (f.t.db.clone(), f.t.url.clone());
    let holder = Arc::new(tokio::sync::Mutex::new(None));
    let held = holder.clone();
    reg.register_json("k.x", KindOptions::default(), move |_, _| {
        let (db, url, held) = (db.clone(), url.clone(), held.clone());
        // While the job runs the database goes away: PostgreSQL's pool closes; SQLite's file is
        // locked by another connection (every write then meets SQLITE_BUSY).
        async move {
            match db {
                keel_storage::Db::Postgres(_) => db.close().await,
                keel_storage::Db::Sqlite(_) => {
                    let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
                    sqlx::query("BEGIN EXCLUSIVE").execute(&mut other).await.unwrap();
                    *held.lock().await = Some(other);
                }
            }
            Ok(())
        }
    })
    .unwrap();
    let mut s = settings(1, 5);
    s.lease = keel_queue::worker::MIN_LEASE;
    let w = Worker::new(f.store.clone(), reg, s);
    let report = match crate::support::within("the tick to give up", w.tick("default")).await.unwrap() {
        Tick::Ran { report } => report,
        other => panic!("expected a run, got {other:?}"),
    };
    assert_eq!((report.claimed, report.completed, report.lost), (1, 0, 1), "{report:?}");
    drop(holder.lock().await.take());
}
