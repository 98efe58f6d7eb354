//! Unit tests for the pure parts: backoff, names, states, new-job checks.

use crate::names::check_name;
use crate::{env_name, JobState, NewJob, QueueError, RetryPolicy};
use proptest::prelude::*;
use std::time::Duration;

#[test]
fn backoff_doubles_until_the_cap() {
    let p = RetryPolicy::new(Duration::from_secs(2), Duration::from_secs(60), 0.0);
    let d: Vec<u64> = (1..=8).map(|a| p.delay_with(a, 0.5).as_secs()).collect();
    assert_eq!(d, vec![2, 4, 8, 16, 32, 60, 60, 60]);
    assert_eq!(p.delay_with(u32::MAX, 0.0), Duration::from_secs(60), "huge attempt numbers saturate");
}

proptest! {
    #[test]
    fn jitter_stays_within_bounds(attempt in 1u32..100, unit in 0.0f64..1.0, jitter in 0.0f64..1.0) {
        let p = RetryPolicy::new(Duration::from_secs(1), Duration::from_secs(3600), jitter);
        let full = RetryPolicy::new(Duration::from_secs(1), Duration::from_secs(3600), 0.0).delay_with(attempt, 0.0);
        let d = p.delay_with(attempt, unit);
        prop_assert!(d <= full);
        prop_assert!(d.as_secs_f64() >= full.as_secs_f64() * (1.0 - jitter) - 1e-9);
    }
}

#[test]
fn names_are_checked_and_mapped_to_env() {
    for ok in ["email.send", "default", "background_job", "a", "x-1"] {
        assert!(check_name("job kind", ok).is_ok(), "{ok}");
    }
    for bad in ["", "Email", ".x", "a b", "ü", &"x".repeat(65)] {
        let err = check_name("job kind", bad).unwrap_err();
        assert!(err.to_string().starts_with("invalid job kind:"), "{err}");
    }
    assert_eq!(env_name("email.send"), "EMAIL_SEND");
    assert_eq!(env_name("background_job"), "BACKGROUND_JOB");
    assert_eq!(env_name("a-b.c"), "A_B_C");
}

#[test]
fn states_parse_and_print() {
    for s in JobState::ALL {
        assert_eq!(s.as_str().parse::<JobState>().unwrap(), s);
    }
    let err = "done".parse::<JobState>().unwrap_err();
    assert!(err.to_string().contains("pending, processing"), "{err}");
    assert!(JobState::Retrying.is_active() && JobState::DeadLetter.is_final());
}

#[test]
fn payload_limit_is_checked_before_anything_is_written() {
    let job = NewJob::new("k.x", &serde_json::json!({"s": "x".repeat(100)})).unwrap();
    assert!(job.check(1000).is_ok());
    assert!(matches!(job.check(50), Err(QueueError::PayloadTooLarge { size, max: 50, .. }) if size > 100));
}

mod switches {
    use crate::worker::WorkerSettings;
    use crate::{SwitchBoard, Switches};
    use keel_config::MapSource;

    #[test]
    fn global_and_per_task_switches() {
        let s = Switches::from_source(&MapSource::new([("DISABLE_CRON_JOBS", "true")])).unwrap();
        assert_eq!(s.task_disabled_by("background_job").as_deref(), Some("DISABLE_CRON_JOBS"));
        assert_eq!(s.task_disabled_by("anything").as_deref(), Some("DISABLE_CRON_JOBS"));
        let s = Switches::from_source(&MapSource::new([("DISABLE_SCHEDULED_WORK", "1")])).unwrap();
        assert_eq!(s.task_disabled_by("webhook_delivery").as_deref(), Some("DISABLE_SCHEDULED_WORK"));
        let s = Switches::from_source(&MapSource::new([
            ("DISABLE_WEBHOOK_DELIVERY_CRON", "true"),
            ("DISABLE_BACKGROUND_JOB_CRON", "false"),
            ("EMAIL_SEND_QUEUE_DISABLED", "yes"),
            ("UNRELATED", "whatever"),
        ]))
        .unwrap();
        assert_eq!(s.task_disabled_by("webhook_delivery").as_deref(), Some("DISABLE_WEBHOOK_DELIVERY_CRON"));
        assert_eq!(s.task_disabled_by("background_job"), None);
        assert!(s.kind_runs_inline("email.send"));
        assert!(!s.kind_runs_inline("webhook.deliver"));
    }

    #[test]
    fn a_switch_that_is_not_a_boolean_is_a_problem_and_reload_keeps_the_old_reading() {
        let err = Switches::from_source(&MapSource::new([("DISABLE_CRON_JOBS", "maybe"), ("X_QUEUE_DISABLED", "2")]))
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("DISABLE_CRON_JOBS") && text.contains("X_QUEUE_DISABLED"), "{text}");
        let board = SwitchBoard::from_source(&MapSource::new([("DISABLE_CRON_JOBS", "true")])).unwrap();
        assert!(board.reload(&MapSource::new([("DISABLE_CRON_JOBS", "sure")])).is_err());
        assert!(board.current().task_disabled_by("t").is_some(), "a bad reload leaves the switches as they were");
        board.reload(&MapSource::new([])).unwrap();
        assert!(board.current().task_disabled_by("t").is_none());
    }

    /// A source with the switches file set to `path`, plus `vars`.
    fn with_file(path: &std::path::Path, vars: &[(&str, &str)]) -> MapSource {
        let mut m = MapSource::new([("KEEL_SWITCHES_FILE", path.to_str().unwrap())]);
        m.0.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        m
    }

    #[test]
    fn the_file_overrides_the_switches_it_names_and_leaves_the_rest_to_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switches");
        std::fs::write(&path, "# incident\nDISABLE_CRON_JOBS=false\nDISABLE_DIGEST_CRON=true\n").unwrap();
        let src = with_file(&path, &[("DISABLE_CRON_JOBS", "true"), ("EMAIL_SEND_QUEUE_DISABLED", "true")]);
        let board = SwitchBoard::from_source(&src).unwrap();
        assert_eq!(board.file(), Some(path.as_path()));
        let on: Vec<String> = board.current().active().map(str::to_owned).collect();
        assert_eq!(on, ["DISABLE_DIGEST_CRON", "EMAIL_SEND_QUEUE_DISABLED"], "the file's false clears the env's true");
        // Unchanged text: the watch does nothing.
        assert!(!board.reload_file_if_changed().unwrap());
        std::fs::write(&path, "DISABLE_SCHEDULED_WORK=true\n").unwrap();
        assert!(board.reload_file_if_changed().unwrap());
        let on: Vec<String> = board.current().active().map(str::to_owned).collect();
        assert_eq!(on, ["DISABLE_CRON_JOBS", "DISABLE_SCHEDULED_WORK", "EMAIL_SEND_QUEUE_DISABLED"]);
        // A bad edit is reported once and keeps the last good reading.
        std::fs::write(&path, "DISABLE_SCHEDULED_WORK=perhaps\n").unwrap();
        let err = board.reload_file_if_changed().unwrap_err().to_string();
        assert!(err.contains("KEEL_SWITCHES_FILE") && err.contains("line 1") && err.contains("perhaps"), "{err}");
        assert!(!board.reload_file_if_changed().unwrap(), "the same bad text is not reported again");
        assert!(board.current().task_disabled_by("x").is_some());
        assert!(board.reload_file().is_err(), "SIGHUP reports it again");
        // Emptied: every switch is the environment's again.
        std::fs::write(&path, "").unwrap();
        assert!(board.reload_file().unwrap());
        let on: Vec<String> = board.current().active().map(str::to_owned).collect();
        assert_eq!(on, ["DISABLE_CRON_JOBS", "EMAIL_SEND_QUEUE_DISABLED"]);
        // Removed: reported once, the last reading stays.
        std::fs::remove_file(&path).unwrap();
        assert!(board.reload_file_if_changed().unwrap_err().to_string().contains("cannot read"));
        assert!(!board.reload_file_if_changed().unwrap());
    }

    #[test]
    fn a_missing_or_bad_file_at_start_is_a_problem_naming_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = SwitchBoard::from_source(&with_file(&missing, &[])).unwrap_err().to_string();
        assert!(err.contains("KEEL_SWITCHES_FILE") && err.contains("cannot read"), "{err}");
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "PAUSE_EVERYTHING=true\n").unwrap();
        let err = SwitchBoard::from_source(&with_file(&bad, &[("DISABLE_CRON_JOBS", "x")])).unwrap_err().to_string();
        assert!(err.contains("PAUSE_EVERYTHING") && err.contains("DISABLE_CRON_JOBS"), "both reported: {err}");
        // No file configured: reload_file is a no-op.
        let plain = SwitchBoard::from_source(&MapSource::new([])).unwrap();
        assert!(!plain.reload_file().unwrap() && !plain.reload_file_if_changed().unwrap());
    }

    #[test]
    fn sizing_defaults_are_the_seeds_and_overridable() {
        let s = WorkerSettings::from_source(&MapSource::new([])).unwrap();
        let q: Vec<_> =
            s.queues.iter().map(|q| (q.queue.as_str(), q.task.as_str(), q.batch_size, q.concurrency)).collect();
        assert_eq!(q, vec![("default", "background_job", 5, 1), ("webhooks", "webhook_delivery", 10, 1)]);
        let s = WorkerSettings::from_source(&MapSource::new([
            ("KEEL_WORKER_QUEUES", "default,mail"),
            ("BACKGROUND_JOB_CRON_BATCH_SIZE", "50"),
            ("BACKGROUND_JOB_CRON_CONCURRENCY", "8"),
            ("MAIL_CRON_CONCURRENCY", "2"),
            ("KEEL_JOB_LEASE", "10s"),
        ]))
        .unwrap();
        assert_eq!((s.queues[0].batch_size, s.queues[0].concurrency), (50, 8));
        assert_eq!((s.queues[1].task.as_str(), s.queues[1].batch_size, s.queues[1].concurrency), ("mail", 5, 2));
        assert_eq!(s.lease, std::time::Duration::from_secs(10));
        // Batch size unset: it follows the concurrency (at least the seed's 5, or 10 for
        // webhooks); set, it is the cap whatever the concurrency.
        let s = WorkerSettings::from_source(&MapSource::new([
            ("KEEL_WORKER_QUEUES", "default,webhooks,mail,bulk"),
            ("BACKGROUND_JOB_CRON_CONCURRENCY", "32"),
            ("WEBHOOK_DELIVERY_CRON_CONCURRENCY", "4"),
            ("MAIL_CRON_CONCURRENCY", "2"),
            ("BULK_CRON_CONCURRENCY", "64"),
            ("BULK_CRON_BATCH_SIZE", "16"),
        ]))
        .unwrap();
        let sized: Vec<_> = s.queues.iter().map(|q| (q.queue.as_str(), q.batch_size, q.concurrency)).collect();
        assert_eq!(sized, vec![("default", 32, 32), ("webhooks", 10, 4), ("mail", 5, 2), ("bulk", 16, 64)]);
        let err = WorkerSettings::from_source(&MapSource::new([
            ("BACKGROUND_JOB_CRON_BATCH_SIZE", "0"),
            ("KEEL_JOB_LEASE", "10"),
            ("KEEL_WORKER_QUEUES", "Bad Queue"),
        ]))
        .unwrap_err()
        .to_string();
        for var in ["KEEL_JOB_LEASE", "KEEL_WORKER_QUEUES"] {
            assert!(err.contains(var), "{err}");
        }
    }
}

mod schedules {
    use crate::cron::Schedule;
    use chrono::{TimeZone, Utc};
    use std::time::Duration;

    #[test]
    fn interval_and_cron_slots() {
        let t = Utc.with_ymd_and_hms(2030, 1, 1, 10, 7, 30).single().unwrap();
        let every = Schedule::every(Duration::from_secs(300));
        assert_eq!(every.first_due(t), t, "interval tasks run when first seen");
        assert_eq!(every.next_after(t), t + chrono::Duration::seconds(300));
        let cron = Schedule::cron("*/15 * * * *").unwrap();
        assert_eq!(cron.first_due(t), Utc.with_ymd_and_hms(2030, 1, 1, 10, 15, 0).single().unwrap());
        assert_eq!(
            cron.next_after(Utc.with_ymd_and_hms(2030, 1, 1, 10, 15, 0).single().unwrap()),
            Utc.with_ymd_and_hms(2030, 1, 1, 10, 30, 0).single().unwrap(),
            "strictly after"
        );
        let daily = Schedule::cron("0 3 * * *").unwrap();
        assert_eq!(daily.next_after(t), Utc.with_ymd_and_hms(2030, 1, 2, 3, 0, 0).single().unwrap());
        let err = Schedule::cron("every monday").unwrap_err().to_string();
        assert!(err.contains("cron expression") && err.contains("every monday"), "{err}");
    }
}
