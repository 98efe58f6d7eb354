//! Real worker processes against one PostgreSQL: a `kill -9` mid-batch loses and double-completes
//! nothing, and two workers draining 10,000 jobs produce every side effect exactly once.

use keel_queue::{JobFilter, JobState, NewJob, Store};
use keel_testkit::{Proc, TestDb};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_keel-worker");

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
}

/// Polls the queue until `done(snapshot)` or the deadline (the database is the only shared
/// state between this test and the worker processes, so it is what we wait on).
fn wait_until(
    rt: &tokio::runtime::Runtime,
    store: &Arc<dyn Store>,
    within: Duration,
    what: &str,
    done: impl Fn(&keel_queue::QueueSnapshot) -> bool,
) {
    let deadline = Instant::now() + within;
    loop {
        let snap = rt.block_on(store.snapshot()).unwrap();
        if done(&snap) {
            return;
        }
        assert!(Instant::now() < deadline, "{what} not reached within {within:?}: {snap:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn kill_9_mid_batch_loses_nothing_and_completes_nothing_twice() {
    let rt = rt();
    let Some(t) = rt.block_on(TestDb::postgres("crash::kill_9_mid_batch", crate::SCHEMAS)) else { return };
    let store = keel_queue::open(t.db.clone());
    let jobs: Vec<NewJob> =
        (0..12).map(|_| NewJob::new("demo.sleep", &serde_json::json!({"ms": 1500})).unwrap()).collect();
    rt.block_on(store.enqueue_many(jobs)).unwrap();
    let outbox = tempfile::tempdir().unwrap();
    let outbox_s = outbox.path().to_str().unwrap().to_owned();
    let env = [
        ("DATABASE_URL", t.url.as_str()),
        ("KEEL_WORKER_METRICS_BIND", "127.0.0.1:0"),
        ("KEEL_MAIL_OUTBOX_DIR", outbox_s.as_str()),
        ("BACKGROUND_JOB_CRON_CONCURRENCY", "4"),
        ("BACKGROUND_JOB_CRON_BATCH_SIZE", "4"),
        ("KEEL_JOB_LEASE", "2s"),
        ("KEEL_JOB_RESCUE_INTERVAL", "1s"),
        // `claimed_batch` is a debug event; the test waits for it to kill mid-batch.
        ("RUST_LOG", "info,keel_queue=debug"),
    ];
    let mut a = Proc::start(BIN, &[], &env);
    a.wait_for(Duration::from_secs(30), |v| v["event"] == "claimed_batch");
    a.signal("KILL");
    let killed_at = chrono::Utc::now();
    let _ = a.wait_exit(Duration::from_secs(10));
    let in_flight: Vec<_> = rt
        .block_on(store.list(JobFilter { state: Some(JobState::Processing), ..Default::default() }))
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert!(!in_flight.is_empty(), "the kill landed while jobs were running");
    let mut b = Proc::start(BIN, &[], &env);
    wait_until(&rt, &store, Duration::from_secs(90), "all 12 completed", |s| s.counts.get(JobState::Completed) == 12);
    let all = rt.block_on(store.list(JobFilter { limit: Some(1000), ..Default::default() })).unwrap();
    assert_eq!(all.len(), 12, "none lost");
    assert!(all.iter().all(|j| j.state == JobState::Completed), "{all:?}");
    // Jobs the dead worker held were rescued and run once more; nothing ran a third time, and
    // the rescue came within the lease (2 s) plus the rescue interval (1 s) and a margin.
    for j in all.iter().filter(|j| in_flight.contains(&j.id)) {
        assert_eq!(j.attempt, 2, "rescued exactly once: {j:?}");
        let restarted = j.started_at.expect("started");
        let waited = (restarted - killed_at).to_std().unwrap_or_default();
        assert!(waited < Duration::from_secs(2 + 1 + 10), "rescued after {waited:?}");
    }
    assert!(all.iter().filter(|j| !in_flight.contains(&j.id)).all(|j| j.attempt == 1));
    b.wait_for(Duration::from_secs(10), |v| v["event"] == "stuck_processing");
    b.signal("TERM");
    assert!(b.wait_exit(Duration::from_secs(30)).success());
}

#[test]
fn two_workers_drain_10000_jobs_with_every_side_effect_exactly_once() {
    let rt = rt();
    let Some(t) = rt.block_on(TestDb::postgres("crash::two_workers_drain", crate::SCHEMAS)) else { return };
    let store = keel_queue::open(t.db.clone());
    const N: usize = 10_000;
    for chunk in (0..N).collect::<Vec<_>>().chunks(1000) {
        let jobs: Vec<NewJob> = chunk
            .iter()
            .map(|i| {
                let payload = serde_json::json!({"to": format!("user{i}@example.com"), "subject": format!("job-{i}"), "text": "hi"});
                NewJob::new("email.send", &payload).unwrap()
            })
            .collect();
        rt.block_on(store.enqueue_many(jobs)).unwrap();
    }
    let outbox = tempfile::tempdir().unwrap();
    let outbox_s = outbox.path().to_str().unwrap().to_owned();
    let env = [
        ("DATABASE_URL", t.url.as_str()),
        ("KEEL_WORKER_METRICS_BIND", "127.0.0.1:0"),
        ("KEEL_MAIL_OUTBOX_DIR", outbox_s.as_str()),
        ("BACKGROUND_JOB_CRON_CONCURRENCY", "8"),
        ("BACKGROUND_JOB_CRON_BATCH_SIZE", "100"),
        ("RUST_LOG", "warn"),
    ];
    let mut a = Proc::start(BIN, &[], &env);
    let mut b = Proc::start(BIN, &[], &env);
    wait_until(&rt, &store, Duration::from_secs(300), "10,000 completed", |s| {
        s.counts.get(JobState::Completed) == N as u64
    });
    a.signal("TERM");
    b.signal("TERM");
    assert!(a.wait_exit(Duration::from_secs(30)).success());
    assert!(b.wait_exit(Duration::from_secs(30)).success());
    let mut seen: HashMap<String, u32> = HashMap::new();
    for entry in std::fs::read_dir(outbox.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "eml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let subject = text.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap().to_owned();
            *seen.entry(subject).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), N, "every job's email was written");
    let dupes: Vec<_> = seen.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dupes.is_empty(), "side effects recorded more than once: {dupes:?}");
}
