//! `HEALTH_TIMEOUT_MS`: default, valid values, and bad input reported by name.

use keel_config::{MapSource, Reader};
use keel_health::{HealthConfig, DEFAULT_DEADLINE};
use std::time::Duration;

fn read(pairs: MapSource) -> (HealthConfig, Vec<keel_config::Problem>) {
    let mut r = Reader::new(&pairs);
    let c = HealthConfig::read(&mut r);
    (c, r.into_problems())
}

#[test]
fn unset_means_two_seconds() {
    let (c, problems) = read(MapSource::default());
    assert_eq!(c.deadline, Duration::from_secs(2));
    assert_eq!(c, HealthConfig::default());
    assert_eq!(DEFAULT_DEADLINE, Duration::from_secs(2));
    assert!(problems.is_empty());
}

#[test]
fn a_whole_number_of_milliseconds_is_the_deadline() {
    let (c, problems) = read(MapSource::new([("HEALTH_TIMEOUT_MS", "750")]));
    assert_eq!(c.deadline, Duration::from_millis(750));
    assert!(problems.is_empty());
}

#[test]
fn a_malformed_value_is_a_problem_naming_the_variable_and_the_default_is_kept() {
    let (c, problems) = read(MapSource::new([("HEALTH_TIMEOUT_MS", "2s")]));
    assert_eq!(c.deadline, DEFAULT_DEADLINE);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].var, "HEALTH_TIMEOUT_MS");
    assert!(problems[0].message.contains("whole number from 10 to 60000"), "{}", problems[0].message);
}

#[test]
fn out_of_range_values_are_problems() {
    for v in ["0", "5", "60001"] {
        let (c, problems) = read(MapSource::new([("HEALTH_TIMEOUT_MS", v)]));
        assert_eq!(c.deadline, DEFAULT_DEADLINE, "{v}");
        assert_eq!(problems.len(), 1, "{v}");
        assert_eq!(problems[0].var, "HEALTH_TIMEOUT_MS");
    }
}
