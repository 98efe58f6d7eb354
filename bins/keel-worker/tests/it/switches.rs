//! The incident switches of a running keel-worker, steered through `KEEL_SWITCHES_FILE`: an
//! edit plus SIGHUP (a real signal), and an edit alone (the file watch), change what the next
//! tick does. Observed through the process's logs and the database, never through sleeps.

use keel_queue::{JobState, NewJob};
use keel_testkit::{backend_tests, Proc, TestDb};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_keel-worker");

backend_tests!(the_switches_file_steers_a_running_worker_on_sighup_and_on_change);

fn skipped(v: &serde_json::Value, task: &str, reason: &str) -> bool {
    v["event"] == "tick_skipped" && v["task"] == task && v["reason"] == reason
}

async fn the_switches_file_steers_a_running_worker_on_sighup_and_on_change(t: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("switches");
    write_atomically(&file, "# no incident\n");
    let outbox = dir.path().join("outbox");
    let env = [
        ("DATABASE_URL", t.url.as_str()),
        ("KEEL_WORKER_METRICS_BIND", "127.0.0.1:0"),
        ("KEEL_MAIL_OUTBOX_DIR", outbox.to_str().unwrap()),
        ("KEEL_SWITCHES_FILE", file.to_str().unwrap()),
        // The incident switch set in the environment, as the old runbook step did.
        ("DISABLE_SCHEDULED_WORK", "true"),
    ];
    let mut p = Proc::start(BIN, &[], &env);
    let wait = |p: &mut Proc, pred: &dyn Fn(&serde_json::Value) -> bool| {
        tokio::task::block_in_place(|| p.wait_for(Duration::from_secs(30), pred))
    };
    wait(&mut p, &|v| skipped(v, "background_job", "DISABLE_SCHEDULED_WORK=true"));
    let store = keel_queue::open(t.db.clone());
    let job = store.enqueue(NewJob::new("demo.sleep", &serde_json::json!({"ms": 1})).unwrap()).await.unwrap().id();

    // The file names the switch: its false clears the environment's true, without a restart.
    write_atomically(&file, "DISABLE_SCHEDULED_WORK=false\n");
    p.signal("HUP");
    let reloaded = wait(&mut p, &|v| v["event"] == "switches_reloaded" && v["active"] == "[]");
    assert!(["sighup", "file_changed"].contains(&reloaded["trigger"].as_str().unwrap()), "{reloaded}");
    // The next tick claims the job that waited.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = store.get(job).await.unwrap().unwrap().state;
        if state == JobState::Completed {
            break;
        }
        assert!(Instant::now() < deadline, "the job still {state:?} after the switch was cleared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // An edit alone (no signal) is picked up by the file watch; one task only this time.
    write_atomically(&file, "DISABLE_SCHEDULED_WORK=false\nDISABLE_BACKGROUND_JOB_CRON=true\n");
    let reloaded = wait(&mut p, &|v| v["event"] == "switches_reloaded" && v["trigger"] == "file_changed");
    assert_eq!(reloaded["active"], "[\"DISABLE_BACKGROUND_JOB_CRON\"]", "{reloaded}");
    wait(&mut p, &|v| skipped(v, "background_job", "DISABLE_BACKGROUND_JOB_CRON=true"));

    // A bad edit is reported with its line and keeps the switches in force.
    write_atomically(&file, "DISABLE_BACKGROUND_JOB_CRON=perhaps\n");
    p.signal("HUP");
    let refused = wait(&mut p, &|v| v["event"] == "switches_not_reloaded");
    let problems = refused["problems"].as_str().unwrap_or_default();
    assert!(problems.contains("KEEL_SWITCHES_FILE") && problems.contains("line 1"), "{refused}");

    p.signal("TERM");
    let status = tokio::task::block_in_place(|| p.wait_exit(Duration::from_secs(20)));
    assert!(status.success(), "{status:?}: {}", p.seen.join("\n"));
}

/// Replaces the switches file in one step, as a ConfigMap update or `mv` does: a watcher polling
/// an in-place write can read it half-written (empty), which is not the edit under test.
fn write_atomically(file: &std::path::Path, text: &str) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}
