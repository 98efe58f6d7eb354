//! keel-api's incident switches through `KEEL_SWITCHES_FILE`, on the real binary: an edit and
//! a real SIGHUP reach the embedded worker's next tick, and the watch runs without the
//! embedded worker too (inline dispatch reads the same switches).

use keel_testkit::Proc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_keel-api");

#[test]
fn the_switches_file_steers_a_running_api_on_sighup() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let t = rt.block_on(keel_testkit::TestDb::sqlite(crate::SCHEMAS));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("switches");
    write_atomically(&file, "# no incident\n");
    let outbox = dir.path().join("outbox");
    for embedded in ["true", "false"] {
        let env = [
            ("KEEL_BIND", "127.0.0.1:0"),
            ("DATABASE_URL", t.url.as_str()),
            ("KEEL_EMBEDDED_WORKER", embedded),
            ("KEEL_MAIL_OUTBOX_DIR", outbox.to_str().unwrap()),
            ("KEEL_SWITCHES_FILE", file.to_str().unwrap()),
        ];
        write_atomically(&file, "# no incident\n");
        let mut p = Proc::start(BIN, &[], &env);
        p.wait_listening();
        write_atomically(&file, "DISABLE_SCHEDULED_WORK=true\nEMAIL_SEND_QUEUE_DISABLED=true\n");
        p.signal("HUP");
        let reloaded = p.wait_for(Duration::from_secs(30), |v| v["event"] == "switches_reloaded");
        assert_eq!(reloaded["active"], "[\"DISABLE_SCHEDULED_WORK\", \"EMAIL_SEND_QUEUE_DISABLED\"]", "{reloaded}");
        if embedded == "true" {
            p.wait_for(Duration::from_secs(30), |v| {
                v["event"] == "tick_skipped"
                    && v["task"] == "background_job"
                    && v["reason"] == "DISABLE_SCHEDULED_WORK=true"
            });
        }
        p.signal("TERM");
        let status = p.wait_exit(Duration::from_secs(20));
        assert!(status.success(), "{status:?}: {}", p.seen.join("\n"));
    }
    drop(t);
}

/// Replaces the switches file in one step, as a ConfigMap update or `mv` does: a watcher polling
/// an in-place write can read it half-written (empty), which is not the edit under test.
fn write_atomically(file: &std::path::Path, text: &str) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}
