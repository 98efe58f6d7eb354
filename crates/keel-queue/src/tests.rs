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
