//! The worker runtime on both backends: typed handlers, failure routing, draining, graceful
//! shutdown with lease release, rescue.

use crate::support::{claim_all, fixture, within};
use keel_queue::worker::{BatchReport, Tick};
use keel_queue::{
    Clock, JobArgs, JobContext, JobError, JobFilter, JobObserver, JobStarted, JobState, KindOptions, NewJob,
    QueueSettings, Registry, Worker, WorkerSettings,
};
use keel_testkit::{backend_tests, TestDb};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

backend_tests!(
    typed_handler_runs_and_completes,
    failures_route_to_retry_failed_or_dead_letter,
    unprocessable_jobs_are_dead_lettered_with_a_clear_error,
    run_drains_every_job_exactly_once,
    jobs_run_at_most_the_concurrency_at_once_and_use_all_of_it,
    a_panic_outside_the_handler_costs_one_job_not_its_run_slot,
    graceful_shutdown_lets_in_flight_jobs_finish,
    shutdown_deadline_releases_leases,
    rescue_reports_stuck_processing_separately,
);

#[derive(Serialize, Deserialize)]
struct Greet {
    name: String,
}

impl JobArgs for Greet {
    const KIND: &'static str = "greet";
    fn options() -> KindOptions {
        KindOptions::default().max_attempts(3)
    }
}

pub(crate) fn settings(concurrency: u32, batch: u32) -> WorkerSettings {
    WorkerSettings {
        worker_id: "w-test".into(),
        queues: vec![QueueSettings::new("default", "background_job", concurrency, batch)],
        poll_interval: Some(Duration::from_millis(50)),
        ..WorkerSettings::default()
    }
}

fn ran(t: Tick) -> BatchReport {
    match t {
        Tick::Ran { report } => report,
        other => panic!("expected a run, got {other:?}"),
    }
}

async fn typed_handler_runs_and_completes(t: TestDb) {
    let f = fixture(t);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut reg = Registry::new();
    let s = seen.clone();
    reg.register(move |g: Greet, ctx: JobContext| {
        let s = s.clone();
        async move {
            s.lock().unwrap().push((g.name, ctx.attempt()));
            Ok(())
        }
    })
    .unwrap();
    assert!(reg.register(|_: Greet, _| async { Ok(()) }).is_err(), "a kind registers once");
    let w = Worker::new(f.store.clone(), reg, settings(2, 10));
    let id = f.store.enqueue(NewJob::args(&Greet { name: "ada".into() }).unwrap()).await.unwrap().id();
    assert_eq!(f.store.get(id).await.unwrap().unwrap().max_attempts, 3, "the kind's options apply at enqueue");
    let r = ran(w.tick("default").await.unwrap());
    assert_eq!((r.claimed, r.completed), (1, 1));
    assert_eq!(*seen.lock().unwrap(), vec![("ada".to_string(), 1)]);
    assert_eq!(f.store.get(id).await.unwrap().unwrap().state, JobState::Completed);
    assert_eq!(w.tick("default").await.unwrap(), Tick::Empty);
    assert!(w.tick("nope").await.is_err());
    assert_eq!(w.metrics().snapshot().completed, 1);
}

async fn failures_route_to_retry_failed_or_dead_letter(t: TestDb) {
    let f = fixture(t);
    let mut reg = Registry::new();
    reg.register_json("flaky", KindOptions::default(), |_, _| async {
        Err(JobError::retryable("provider timeout for jane@example.com"))
    })
    .unwrap();
    reg.register_json("bounce", KindOptions::default(), |_, _| async { Err(JobError::permanent("550 no such user")) })
        .unwrap();
    reg.register_json("boom", KindOptions::default(), |_, _| async { panic!("handler bug") }).unwrap();
    reg.register_json("slow", KindOptions::default().timeout(Duration::from_millis(20)), |_, _| async {
        std::future::pending::<()>().await;
        Ok(())
    })
    .unwrap();
    reg.register_json("later", KindOptions::default(), |_, _| async {
        Err(JobError::retryable("429").retry_after(Duration::from_secs(120)))
    })
    .unwrap();
    let w = Worker::new(f.store.clone(), reg, settings(8, 10));
    let mut ids = Vec::new();
    for kind in ["flaky", "bounce", "boom", "slow", "later"] {
        // Untyped jobs carry their attempts themselves (typed ones get the kind's options).
        ids.push(f.store.enqueue(NewJob::new(kind, &json!({})).unwrap().max_attempts(2)).await.unwrap().id());
    }
    let r = ran(w.tick("default").await.unwrap());
    assert_eq!((r.retried, r.failed), (4, 1));
    let job = |i: usize| {
        let store = f.store.clone();
        let id = ids[i];
        async move { store.get(id).await.unwrap().unwrap() }
    };
    let flaky = job(0).await;
    assert_eq!(flaky.state, JobState::Retrying);
    let delay = (flaky.run_at - f.clock.now()).num_milliseconds();
    assert!((1600..=2000).contains(&delay), "first backoff is 2 s less up to 20% jitter, got {delay} ms");
    assert_eq!(job(1).await.state, JobState::Failed);
    assert!(job(2).await.last_error.unwrap().contains("handler panicked: handler bug"));
    assert!(job(3).await.last_error.unwrap().contains("timed out"));
    assert_eq!((job(4).await.run_at - f.clock.now()).num_seconds(), 120, "Retry-After wins over backoff");
    // The second failure of a two-attempt kind dead-letters it.
    f.clock.advance(Duration::from_secs(3));
    let r = ran(w.tick("default").await.unwrap());
    assert!(r.dead_lettered >= 1, "{r:?} {:?}", job(0).await);
    assert_eq!(job(0).await.state, JobState::DeadLetter);
}

async fn unprocessable_jobs_are_dead_lettered_with_a_clear_error(t: TestDb) {
    let f = fixture(t);
    let mut reg = Registry::new();
    reg.register(|_: Greet, _| async { Ok(()) }).unwrap();
    let mut s = settings(4, 10);
    s.max_payload_bytes = 2048;
    let w = Worker::new(f.store.clone(), reg, s);
    let unknown = f.store.enqueue(NewJob::new("no.such.kind", &json!({})).unwrap()).await.unwrap().id();
    let bad = f.store.enqueue(NewJob::new("greet", &json!({"nom": 1})).unwrap()).await.unwrap().id();
    let big = f.store.enqueue(NewJob::new("greet", &json!({"name": "x".repeat(5000)})).unwrap()).await.unwrap().id();
    let r = ran(w.tick("default").await.unwrap());
    assert_eq!(r.dead_lettered, 3);
    let err = |id| {
        let store = f.store.clone();
        async move {
            let j = store.get(id).await.unwrap().unwrap();
            assert_eq!((j.state, j.attempt), (JobState::DeadLetter, 1), "never retried");
            j.last_error.unwrap()
        }
    };
    let e = err(unknown).await;
    assert!(e.contains("unknown job kind \"no.such.kind\"") && e.contains("it handles: greet"), "{e}");
    assert!(e.contains("requeue-dead --kind no.such.kind"), "{e}");
    let e = err(bad).await;
    assert!(e.contains("payload does not match job kind greet") && e.contains("name"), "{e}");
    let e = err(big).await;
    assert!(e.contains("over this worker's 2048-byte limit"), "{e}");
}

async fn run_drains_every_job_exactly_once(t: TestDb) {
    let f = fixture(t);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let all_done = Arc::new(Notify::new());
    let mut reg = Registry::new();
    let (s, d) = (seen.clone(), all_done.clone());
    reg.register_json("work", KindOptions::default(), move |v, _| {
        let (s, d) = (s.clone(), d.clone());
        async move {
            let mut g = s.lock().unwrap();
            g.push(v["i"].as_u64().unwrap());
            if g.len() == 500 {
                d.notify_one();
            }
            Ok(())
        }
    })
    .unwrap();
    let w = Arc::new(Worker::new(f.store.clone(), reg, settings(8, 25)));
    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let (w, c) = (w.clone(), cancel.clone());
        async move { w.run(c).await }
    });
    // Half before the worker is up, half while it runs.
    f.store.enqueue_many((0..250).map(|i| NewJob::new("work", &json!({ "i": i })).unwrap()).collect()).await.unwrap();
    for i in 250..500 {
        f.store.enqueue(NewJob::new("work", &json!({ "i": i })).unwrap()).await.unwrap();
    }
    within("all 500 jobs to run", all_done.notified()).await;
    cancel.cancel();
    let report = within("the worker to stop", run).await.unwrap().unwrap();
    let seen = seen.lock().unwrap().clone();
    let distinct: HashSet<_> = seen.iter().collect();
    assert_eq!((seen.len(), distinct.len()), (500, 500), "each job's handler ran once");
    assert_eq!(report.metrics.completed, 500, "every finish flushed before run returned");
    assert_eq!(f.store.snapshot().await.unwrap().counts.completed, 500);
    // A stopped worker holds no connection (PostgreSQL's claim loop keeps one while it runs):
    // the host's pool closes with the worker and its store still alive.
    within("the pool to close", f.t.db.close()).await;
    drop(w);
}

/// The run slots: a claim of three times the concurrency queues every job at once, and no
/// more than the concurrency run together, yet all of it is used (the handlers wait until
/// every slot is taken, so a worker running fewer would never get past the gate).
async fn jobs_run_at_most_the_concurrency_at_once_and_use_all_of_it(t: TestDb) {
    const CONCURRENCY: usize = 4;
    let f = fixture(t);
    let (running, most) = (Arc::new(Mutex::new(0usize)), Arc::new(Mutex::new(0usize)));
    let (full, all_done) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (gate_tx, gate_rx) = tokio::sync::watch::channel(false);
    let done = Arc::new(Mutex::new(0usize));
    let mut reg = Registry::new();
    let (r, m, fl, ad, d) = (running.clone(), most.clone(), full.clone(), all_done.clone(), done.clone());
    reg.register_json("slot", KindOptions::default(), move |_, _| {
        let (r, m, fl, ad, d, mut gate) = (r.clone(), m.clone(), fl.clone(), ad.clone(), d.clone(), gate_rx.clone());
        async move {
            {
                let mut now = r.lock().unwrap();
                *now += 1;
                let mut most = m.lock().unwrap();
                *most = (*most).max(*now);
                if *now == CONCURRENCY {
                    fl.notify_one();
                }
            }
            gate.wait_for(|open| *open).await.map_err(|e| JobError::retryable(e.to_string()))?;
            *r.lock().unwrap() -= 1;
            let mut d = d.lock().unwrap();
            *d += 1;
            if *d == 3 * CONCURRENCY {
                ad.notify_one();
            }
            Ok(())
        }
    })
    .unwrap();
    let jobs = (0..3 * CONCURRENCY).map(|_| NewJob::new("slot", &json!({})).unwrap()).collect();
    f.store.enqueue_many(jobs).await.unwrap();
    let w = Arc::new(Worker::new(f.store.clone(), reg, settings(CONCURRENCY as u32, 25)));
    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let (w, c) = (w.clone(), cancel.clone());
        async move { w.run(c).await }
    });
    within("every run slot to be taken", full.notified()).await;
    gate_tx.send(true).unwrap();
    within("every job to run", all_done.notified()).await;
    cancel.cancel();
    let report = within("the worker to stop", run).await.unwrap().unwrap();
    assert_eq!(*most.lock().unwrap(), CONCURRENCY, "never more than the concurrency at once");
    assert_eq!(report.metrics.completed, 3 * CONCURRENCY as u64);
}

/// A host's observer that panics on a job's start: the handler's own panics are caught around
/// it, this one around the whole run. The worker's only run slot survives it, the other jobs
/// still run, and the job it hit is left to the rescue (as if its worker had crashed).
async fn a_panic_outside_the_handler_costs_one_job_not_its_run_slot(t: TestDb) {
    struct PanicsOnce(std::sync::atomic::AtomicBool);
    impl JobObserver for PanicsOnce {
        fn started(&self, _: &JobStarted<'_>) {
            if !self.0.swap(true, std::sync::atomic::Ordering::SeqCst) {
                panic!("the host's observer broke");
            }
        }
    }
    let f = fixture(t);
    let ran = Arc::new(Mutex::new(0usize));
    let done = Arc::new(Notify::new());
    let mut reg = Registry::new();
    let (r, d) = (ran.clone(), done.clone());
    reg.register_json("k.x", KindOptions::default(), move |_, _| {
        let (r, d) = (r.clone(), d.clone());
        async move {
            let mut n = r.lock().unwrap();
            *n += 1;
            if *n == 2 {
                d.notify_one();
            }
            Ok(())
        }
    })
    .unwrap();
    let jobs = (0..3).map(|i| NewJob::new("k.x", &json!({ "i": i })).unwrap()).collect();
    f.store.enqueue_many(jobs).await.unwrap();
    let observer = Arc::new(PanicsOnce(false.into()));
    let w = Arc::new(Worker::new(f.store.clone(), reg, settings(1, 5)).with_observer(observer));
    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let (w, c) = (w.clone(), cancel.clone());
        async move { w.run(c).await }
    });
    within("the two other jobs to run on the one slot", done.notified()).await;
    cancel.cancel();
    let report = within("the worker to stop", run).await.unwrap().unwrap();
    assert_eq!(report.metrics.completed, 2);
    let counts = f.store.snapshot().await.unwrap().counts;
    assert_eq!((counts.completed, counts.processing), (2, 1), "the job hit by the panic awaits the rescue");
    f.clock.advance(Duration::from_secs(31));
    assert_eq!(w.rescue_now().await.unwrap().len(), 1, "rescued once its lease expires, to run again");
}

async fn graceful_shutdown_lets_in_flight_jobs_finish(t: TestDb) {
    let f = fixture(t);
    let started = Arc::new(Notify::new());
    let go = Arc::new(Notify::new());
    let mut reg = Registry::new();
    let (st, g) = (started.clone(), go.clone());
    reg.register_json("hold", KindOptions::default(), move |_, _| {
        let (st, g) = (st.clone(), g.clone());
        async move {
            st.notify_one();
            g.notified().await;
            Ok(())
        }
    })
    .unwrap();
    let w = Arc::new(Worker::new(f.store.clone(), reg, settings(1, 5)));
    let id = f.store.enqueue(NewJob::new("hold", &json!({})).unwrap()).await.unwrap().id();
    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let (w, c) = (w.clone(), cancel.clone());
        async move { w.run(c).await }
    });
    within("the job to start", started.notified()).await;
    cancel.cancel();
    // A job enqueued after the stop signal is not claimed by a stopping worker.
    let late = f.store.enqueue(NewJob::new("hold", &json!({})).unwrap()).await.unwrap().id();
    go.notify_one();
    let report = within("the worker to drain", run).await.unwrap().unwrap();
    // The claimer prefetches while the run slot is busy, so a claim already in flight when
    // the stop lands (on SQLite it can wait for the write lock behind the late enqueue) may
    // take the late job; it is handed straight back, never started, its attempt restored.
    assert!(report.released_at_shutdown <= 1, "{}", report.released_at_shutdown);
    assert_eq!(f.store.get(id).await.unwrap().unwrap().state, JobState::Completed);
    let late = f.store.get(late).await.unwrap().unwrap();
    assert_eq!((late.state, late.attempt), (JobState::Pending, 0));
}

async fn shutdown_deadline_releases_leases(t: TestDb) {
    let f = fixture(t);
    let started = Arc::new(Notify::new());
    let mut reg = Registry::new();
    let st = started.clone();
    reg.register_json("stubborn", KindOptions::default(), move |_, _| {
        let st = st.clone();
        async move {
            st.notify_one();
            std::future::pending::<()>().await;
            Ok(())
        }
    })
    .unwrap();
    let mut s = settings(1, 5);
    s.shutdown_grace = Duration::from_millis(100);
    let w = Arc::new(Worker::new(f.store.clone(), reg, s));
    let a = f.store.enqueue(NewJob::new("stubborn", &json!({})).unwrap()).await.unwrap().id();
    let b = f.store.enqueue(NewJob::new("stubborn", &json!({})).unwrap()).await.unwrap().id();
    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let (w, c) = (w.clone(), cancel.clone());
        async move { w.run(c).await }
    });
    within("the first job to start", started.notified()).await;
    cancel.cancel();
    let report = within("the worker to give up and stop", run).await.unwrap().unwrap();
    // Job a was running (abandoned at the deadline); b was claimed in the same batch but
    // never started. Both are runnable at once, with the attempt given back.
    assert_eq!(report.metrics.released, 2);
    for id in [a, b] {
        let j = f.store.get(id).await.unwrap().unwrap();
        assert_eq!((j.state, j.attempt), (JobState::Pending, 0), "{id}");
    }
    assert_eq!(claim_all(&f.store, "default", 10).await.len(), 2, "another worker picks them up immediately");
}

async fn rescue_reports_stuck_processing_separately(t: TestDb) {
    let f = fixture(t);
    let w = Worker::new(f.store.clone(), Registry::new(), settings(1, 5));
    f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap()).await.unwrap();
    f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().max_attempts(1)).await.unwrap();
    // A worker claims both and is killed.
    claim_all(&f.store, "default", 5).await;
    assert!(w.rescue_now().await.unwrap().is_empty(), "leases still current");
    f.clock.advance(Duration::from_secs(31));
    let rescued = w.rescue_now().await.unwrap();
    assert_eq!(rescued.len(), 2);
    let m = w.metrics().snapshot();
    assert_eq!((m.stuck_processing, m.failed, m.dead_lettered), (2, 0, 0), "stuck is its own outcome");
    let states: Vec<_> = f.store.list(JobFilter::default()).await.unwrap().into_iter().map(|j| j.state).collect();
    assert!(states.contains(&JobState::Retrying) && states.contains(&JobState::DeadLetter));
}

/// PostgreSQL's wakeup listener holds a pooled connection for as long as the worker runs: on a
/// pool of one the worker would claim nothing and retry forever, so it refuses to start and
/// says which setting to raise; a pool of two runs jobs.
#[tokio::test]
async fn a_postgres_worker_refuses_a_pool_its_listener_would_fill() {
    let Some(t) =
        TestDb::postgres("worker::a_postgres_worker_refuses_a_pool_its_listener_would_fill", crate::SCHEMAS).await
    else {
        return;
    };
    let pool_of = |n: u32| {
        let url = t.url.clone();
        async move {
            let pool = sqlx::postgres::PgPoolOptions::new().max_connections(n).connect(&url).await.expect("pool");
            keel_queue::open(keel_storage::Db::Postgres(pool))
        }
    };
    let refused = Worker::new(pool_of(1).await, Registry::new(), settings(1, 5));
    let err = within("a worker on a pool of one to refuse to start", refused.run(CancellationToken::new()))
        .await
        .expect_err("a pool of one is refused");
    let msg = err.to_string();
    assert!(msg.contains("database pool size") && msg.contains("KEEL_DB_MAX_CONNECTIONS"), "{msg}");

    let store = pool_of(2).await;
    let ran = Arc::new(Notify::new());
    let mut reg = Registry::new();
    reg.register_json("k.x", KindOptions::default(), {
        let ran = ran.clone();
        move |_, _| {
            ran.notify_one();
            async { Ok(()) }
        }
    })
    .unwrap();
    let w = Arc::new(Worker::new(store.clone(), reg, settings(1, 5)));
    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let (w, c) = (w.clone(), cancel.clone());
        async move { w.run(c).await }
    });
    store.enqueue(NewJob::new("k.x", &json!({})).unwrap()).await.unwrap();
    within("a job to run on a pool of two", ran.notified()).await;
    cancel.cancel();
    within("the worker to stop", run).await.unwrap().unwrap();
}
