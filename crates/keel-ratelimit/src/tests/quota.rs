//! Parsing and validating quotas: every accepted form, every error message.

use crate::{Quota, QuotaError};
use std::time::Duration;

fn parse(s: &str) -> Result<Quota, QuotaError> {
    s.parse()
}

#[test]
fn accepted_forms() {
    let minute = Duration::from_secs(60);
    for s in ["60/1m,burst=60", "60/1m", "60/min", "60/m", "60/minute", " 60 / 1m , burst = 60 ", "60/60s", "60/1MIN"] {
        let q = parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!((q.count(), q.period(), q.burst()), (60, minute, 60), "{s:?}");
    }
    let q = parse("5/1h,burst=3").unwrap();
    assert_eq!((q.count(), q.period(), q.burst()), (5, Duration::from_secs(3600), 3));
    assert_eq!(q.emission_interval(), Duration::from_secs(720));
    let q = parse("10/500ms,BURST=1").unwrap();
    assert_eq!(q.emission_interval(), Duration::from_millis(50));
    assert_eq!(parse("1/day").unwrap().period(), Duration::from_secs(86_400));
    assert_eq!(parse("100/hour").unwrap().period(), Duration::from_secs(3_600));
    assert_eq!(parse("3/2d").unwrap().period(), Duration::from_secs(2 * 86_400));
}

#[test]
fn display_round_trips() {
    for s in ["60/1m,burst=60", "5/1h,burst=3", "600/1m,burst=120", "10/500ms,burst=1", "7/90s,burst=2", "1/1d,burst=1"]
    {
        let q = parse(s).unwrap();
        assert_eq!(q.to_string(), s);
        assert_eq!(parse(&q.to_string()).unwrap(), q);
    }
    assert_eq!(parse("60/min").unwrap().to_string(), "60/1m,burst=60");
}

#[test]
fn errors_name_the_problem() {
    let cases: &[(&str, QuotaError, &str)] = &[
        ("", QuotaError::Empty, "is empty"),
        ("60", QuotaError::Shape("60".into()), "<requests>/<period>"),
        ("x/1m", QuotaError::Count("x".into()), "request count \"x\""),
        ("0/1m", QuotaError::Count("0".into()), "from 1"),
        ("-1/1m", QuotaError::Count("-1".into()), "whole number"),
        ("60/fortnight", QuotaError::Period("fortnight".into()), "period \"fortnight\""),
        ("60/1", QuotaError::Period("1".into()), "like 1s, 1m"),
        ("60/0s", QuotaError::PeriodPrecision, "at least 1ms"),
        ("60/400d", QuotaError::PeriodTooLong, "366 days"),
        ("60/1m,burst=0", QuotaError::Burst("0".into()), "burst \"0\""),
        ("60/1m,burst=lots", QuotaError::Burst("lots".into()), "whole number"),
        ("60/1m,burst=5,burst=6", QuotaError::DuplicateBurst, "twice"),
        ("60/1m,brust=5", QuotaError::UnknownOption("brust=5".into()), "only option is burst"),
        ("60/1m,", QuotaError::UnknownOption("".into()), "unknown option"),
    ];
    for (input, err, fragment) in cases {
        let got = parse(input).unwrap_err();
        assert_eq!(&got, err, "{input:?}");
        assert!(got.to_string().contains(fragment), "{input:?}: {got}");
    }
}

#[test]
fn limits_that_cannot_be_represented_are_refused() {
    assert!(matches!(parse("4000000000/1s"), Err(QuotaError::TooFine { .. })));
    assert!(matches!(parse("1/1d,burst=1000"), Err(QuotaError::BurstTooLong { .. })));
    assert!(matches!(Quota::new(1, Duration::from_nanos(1_500_000), 1), Err(QuotaError::PeriodPrecision)));
    assert!(Quota::new(0, Duration::from_secs(1), 1).is_err());
    assert!(Quota::new(1, Duration::from_secs(1), 0).is_err());
}

#[test]
fn window_and_max_in_window() {
    let q = parse("60/1m,burst=60").unwrap();
    assert_eq!(q.window_secs(), 60);
    assert_eq!(q.max_in_window(Duration::ZERO), 0);
    assert_eq!(q.max_in_window(Duration::from_millis(1)), 60);
    assert_eq!(q.max_in_window(Duration::from_millis(1_500)), 61);
    assert_eq!(q.max_in_window(Duration::from_secs(3_600)), 3_659);
    assert_eq!(parse("10/500ms").unwrap().window_secs(), 1);
    assert_eq!(parse("5/1h,burst=3").unwrap().max_in_window(Duration::from_secs(3_600)), 7);
    assert_eq!(
        Quota::per(60, Duration::from_secs(60)).unwrap().with_burst(1).unwrap().max_in_window(Duration::from_secs(60)),
        60
    );
}
